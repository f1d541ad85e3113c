/// Where LeadFlow keeps its state (archives, spool, token key, the embedded cluster) when
/// `LEADFLOW_HOME` is unset. A folder relative to the working directory (the old
/// `.leadflow`) made `connect` from another folder silently create a second token key; these
/// defaults are the same wherever a command is started.
public enum StateHome {
    /// The service's own folder (install.sh and the Dockerfile create it, 0700, owned by `leadflow`).
    public static let systemFolder = "/var/lib/leadflow"

    /// `/var/lib/leadflow` for a system user (uid below 1000, Debian's first ordinary uid,
    /// or the user named `leadflow`), else `$XDG_STATE_HOME/leadflow` (XDG Base Directory:
    /// state that should persist, but is not worth backing up as documents are), with
    /// `XDG_STATE_HOME` defaulting to `~/.local/state`. The spec says a relative
    /// `XDG_STATE_HOME` is invalid and must be ignored. nil: no home folder to build on.
    ///
    /// - Parameters:
    ///   - homeDirectory: `HOME`, or the password database's folder when it is unset.
    public static func defaultPath(uid: UInt32, userName: String?, xdgStateHome: String?, homeDirectory: String?) -> String? {
        if uid < 1000 || userName == "leadflow" { return systemFolder }
        if let xdg = xdgStateHome, xdg.hasPrefix("/") { return joined(xdg, "leadflow") }
        guard let home = homeDirectory, home.hasPrefix("/") else { return nil }
        return joined(home, ".local/state/leadflow")
    }

    private static func joined(_ folder: String, _ tail: String) -> String {
        (folder.hasSuffix("/") ? String(folder.dropLast()) : folder) + "/" + tail
    }
}
