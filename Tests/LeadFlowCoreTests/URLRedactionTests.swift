import Foundation
import LeadFlowCore
import Testing

@Suite struct URLRedactionTests {
    @Test func graphNextURLLosesItsToken() {
        let next = "https://graph.facebook.com/v25.0/123/leads?access_token=EAAB-not-a-real-token&limit=25&after=QVFIUk"
        #expect(URLRedaction.redact(next) == "https://graph.facebook.com/v25.0/123/leads?limit=25&after=QVFIUk")
        #expect(URLRedaction.redact("http://h/x?after=Q&access_token=T") == "http://h/x?after=Q")
        #expect(URLRedaction.redact("http://h/x?access_token=T") == "http://h/x")
    }

    @Test(arguments: ["access_token", "appsecret_proof", "client_secret", "fb_exchange_token", "input_token", "ACCESS_TOKEN"])
    func everySecretParameterIsMasked(name: String) {
        let text = "GET http://127.0.0.1:9/x?a=1&\(name)=s3cr3t-value&b=2 failed"
        let redacted = URLRedaction.redact(text)
        #expect(!redacted.contains("s3cr3t-value"))
        #expect(redacted == "GET http://127.0.0.1:9/x?a=1&b=2 failed")
    }

    @Test func ordinaryParametersAndTextAreKept() {
        let text = "http://h/x?after=abc&limit=100&my_access_token_count=3"
        #expect(URLRedaction.redact(text) == text)
    }

    @Test func severalSecretsInOneMessage() {
        let text = #"{"next":"http://h/a?access_token=T1&x=1"} and http://h/b?input_token=T2"#
        let redacted = URLRedaction.redact(text)
        #expect(!redacted.contains("T1") && !redacted.contains("T2"))
        #expect(redacted == #"{"next":"http://h/a?x=1"} and http://h/b"#)
    }

    /// A page body is redacted in place (no copy of 50 MB): the same bytes as the copying
    /// redaction, in the same buffer, for bodies with several secrets, one, or none.
    @Test(arguments: [
        #"{"data":[],"paging":{"next":"https://g/v25.0/1/leads?access_token=EAAB-x&limit=25&after=QVF","previous":"https://g/x?after=Q&access_token=T"}}"#,
        #"{"paging":{"next":"http://h/x?access_token=T"}}"#,
        #"{"data":[{"id":"1","field_data":[{"name":"q","values":["a=b & c"]}]}]}"#,
    ])
    func aBodyIsRedactedInPlaceExactlyAsByCopy(body: String) {
        var data = Data(body.utf8)
        URLRedaction.redact(owned: &data)
        let copied = URLRedaction.redact(utf8: Array(body.utf8)).map { Data($0) } ?? Data(body.utf8)
        #expect(data == copied)
        #expect(!String(decoding: data, as: UTF8.self).contains("access_token"))
    }
}
