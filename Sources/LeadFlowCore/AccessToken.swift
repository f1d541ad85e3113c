/// A Facebook access token. Printing, logging or interpolating it shows `<token>`, never
/// the secret: only `secret` gives the text, and only the code that sends it reads it.
public struct AccessToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let secret: String

    public init(_ secret: String) {
        self.secret = secret
    }

    public var description: String { "<token>" }
    public var debugDescription: String { "<token>" }
}
