import LeadFlowCore
import Testing

/// The default LEADFLOW_HOME: the same folder wherever a command starts.
@Suite struct StateHomeTests {
    @Test func aSystemUserGetsTheServiceFolder() {
        for (uid, name) in [(UInt32(0), "root"), (998, "leadflow"), (999, "_leadflow"), (1500, "leadflow")] {
            #expect(StateHome.defaultPath(uid: uid, userName: name, xdgStateHome: "/x", homeDirectory: "/home/a") == "/var/lib/leadflow",
                    "uid \(uid) \(name)")
        }
    }

    @Test func anyoneElseGetsTheirXDGStateFolder() {
        #expect(StateHome.defaultPath(uid: 1000, userName: "priya", xdgStateHome: nil, homeDirectory: "/home/priya")
            == "/home/priya/.local/state/leadflow")
        #expect(StateHome.defaultPath(uid: 1000, userName: "priya", xdgStateHome: "/srv/state/", homeDirectory: "/home/priya")
            == "/srv/state/leadflow")
        // The XDG spec: a relative XDG_STATE_HOME is invalid and ignored.
        #expect(StateHome.defaultPath(uid: 1000, userName: "priya", xdgStateHome: "state", homeDirectory: "/home/priya")
            == "/home/priya/.local/state/leadflow")
        #expect(StateHome.defaultPath(uid: 4242, userName: nil, xdgStateHome: nil, homeDirectory: nil) == nil)
    }
}
