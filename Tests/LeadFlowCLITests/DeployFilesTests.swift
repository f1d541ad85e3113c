import Foundation
import LeadFlowCore
import LeadFlowTestSupport
import Testing
import Yams

/// The files in deploy/ do what they say: the systemd unit's sandbox scores as its comment
/// claims, and the Kubernetes pod can read its token key as its own non-root user. The
/// numbers come from the files themselves, never copied into the test.
@Suite(.serialized) struct DeployFilesTests {
    static let now = UTCTime.parse("2026-11-20T00:00:00Z")!
    let deploy = Repository.root.appendingPathComponent("deploy")

    // MARK: systemd

    func systemdAnalyze() throws -> String {
        try #require(["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) },
                     "systemd-analyze is missing: scripts/test.sh installs Debian's systemd package")
    }

    @Test func theSystemdUnitIsHardenedToAtMostTwo() async throws {
        let unit = deploy.appendingPathComponent("systemd/leadflow-run.service")
        let result = try await runProgram(try systemdAnalyze(), ["security", "--offline=true", "--no-pager", unit.path])
        #expect(result.status == 0, "\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level for leadflow-run.service:") },
                                "\(result.stdout)\(result.stderr)")
        let figure = try #require(Double(line.split(separator: ":").last!.split(separator: " ").first!), "\(line)")
        #expect(figure <= 2.0, "\(line)")
        // The unit's own comment states the figure it scores.
        let text = try String(contentsOf: unit, encoding: .utf8)
        #expect(text.contains("scores \(String(format: "%.1f", figure))"), "update the comment in leadflow-run.service: \(line)")
    }

    /// Every unit parses and every setting is known (systemd-analyze verify), with ExecStart
    /// pointed at the built binary since verify checks that the program exists.
    @Test func theSystemdUnitsVerify() async throws {
        let folder = try Repository.temporaryFolder("units")
        for name in ["leadflow-run.service", "leadflow-run.timer", "leadflow-alert@.service"] {
            let text = try String(contentsOf: deploy.appendingPathComponent("systemd/\(name)"), encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/leadflow", with: LeadFlowBinary.path)
            try Data(text.utf8).write(to: folder.appendingPathComponent(name))
        }
        let result = try await runProgram(try systemdAnalyze(), ["verify", "--man=no", "leadflow-run.service", "leadflow-run.timer", "leadflow-alert@.service"],
                                    in: folder)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
    }

    // MARK: Kubernetes

    /// The CronJob's pod spec, from the first document of the manifest whose kind is CronJob.
    func cronJob() throws -> [String: Any] {
        let text = try String(contentsOf: deploy.appendingPathComponent("kubernetes/cronjob.yaml"), encoding: .utf8)
        let documents = try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
        return try #require(documents.first { $0["kind"] as? String == "CronJob" })
    }

    func dig(_ value: Any?, _ path: String) throws -> Any {
        var current = value
        for key in path.split(separator: ".") { current = (current as? [String: Any])?[String(key)] }
        return try #require(current, "no \(path) in the manifest")
    }

    @Test func theCronJobIsRestrictedPinnedAndBounded() async throws {
        let job = try dig(try cronJob(), "spec.jobTemplate.spec")
        #expect((try dig(job, "activeDeadlineSeconds") as? Int ?? 0) > 0)
        let pod = try dig(job, "template.spec")
        #expect(try dig(pod, "securityContext.runAsNonRoot") as? Bool == true)
        #expect(try dig(pod, "securityContext.seccompProfile.type") as? String == "RuntimeDefault")
        #expect((try dig(pod, "securityContext.runAsUser") as? Int ?? 0) > 0)
        let version = try await runProgram(LeadFlowBinary.path, ["--version"]).stdout.split(separator: " ")[1]
        let containers = (try dig(pod, "containers") as? [[String: Any]] ?? []) + (try dig(pod, "initContainers") as? [[String: Any]] ?? [])
        #expect(containers.count == 2)
        for container in containers {
            let name = container["name"] as? String ?? "?"
            #expect(try dig(container, "securityContext.allowPrivilegeEscalation") as? Bool == false, "\(name)")
            #expect(try dig(container, "securityContext.readOnlyRootFilesystem") as? Bool == true, "\(name)")
            #expect(try dig(container, "securityContext.capabilities.drop") as? [String] == ["ALL"], "\(name)")
            // Pinned to the version this binary says it is (never :latest).
            #expect((container["image"] as? String ?? "").hasSuffix(":\(version)"), "\(name): \(container["image"] ?? "")")
        }
    }

    /// Plays kubelet with the manifest's numbers: the Secret's key files (token and erasure
    /// key) root-owned with its defaultMode (plus group read and the fsGroup, as kubelet does
    /// when fsGroup is set), the emptyDir group-owned by fsGroup; then the init container's
    /// own command, `leadflow check` and `leadflow erase` run as runAsUser:runAsGroup with
    /// fsGroup as supplementary group, with the mount paths mapped to folders here. check
    /// opens the token key and erase the erasure key (exit 0); the mounted Secret file
    /// itself is refused, which is why the init container exists.
    @Test func theCronJobsPodReadsItsKeyAsItsOwnUser() async throws {
        try #require(getuid() == 0, "this test plays kubelet (chown) and the pod's user (setpriv): run the suite as root (CI does)")
        let pod = try #require(try dig(try cronJob(), "spec.jobTemplate.spec.template.spec") as? [String: Any])
        let uid = try #require(try dig(pod, "securityContext.runAsUser") as? Int)
        let gid = try dig(pod, "securityContext.runAsGroup") as? Int ?? uid
        let fsGroup = (pod["securityContext"] as? [String: Any])?["fsGroup"] as? Int
        let volumes = try #require(pod["volumes"] as? [[String: Any]])
        let secretVolume = try #require(volumes.first { $0["secret"] != nil })
        let secret = try #require(secretVolume["secret"] as? [String: Any])
        let defaultMode = secret["defaultMode"] as? Int ?? 0o644
        let item = (secret["items"] as? [[String: Any]])?.first { $0["key"] as? String == "token.key" }
        let keyFileName = item?["path"] as? String ?? "token.key"
        let mode = item?["mode"] as? Int ?? defaultMode
        let emptyDirNames = Set(volumes.filter { $0["emptyDir"] != nil }.compactMap { $0["name"] as? String })

        let main = try #require((pod["containers"] as? [[String: Any]])?.first)
        let env = try #require(main["env"] as? [[String: Any]])
        let keyPath = try #require(env.first { $0["name"] as? String == "LEADFLOW_KEY_FILE" }?["value"] as? String)

        // The folders kubelet would mount, by mount path.
        let root = try Repository.temporaryFolder("pod")
        chmod(root.path, 0o755)
        var mounts: [(path: String, folder: URL)] = []
        func mount(_ container: [String: Any]) throws {
            for volumeMount in container["volumeMounts"] as? [[String: Any]] ?? [] {
                let name = try #require(volumeMount["name"] as? String), path = try #require(volumeMount["mountPath"] as? String)
                guard !mounts.contains(where: { $0.path == path }) else { continue }
                let folder = root.appendingPathComponent(name)
                if !FileManager.default.fileExists(atPath: folder.path) {
                    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                    if name == secretVolume["name"] as? String {
                        chown(folder.path, 0, 0)
                        chmod(folder.path, 0o755)
                    } else {
                        // emptyDir and the archive volume: group fsGroup, setgid, group-writable.
                        chown(folder.path, 0, gid_t(fsGroup ?? 0))
                        chmod(folder.path, emptyDirNames.contains(name) ? 0o2777 : 0o2775)
                    }
                }
                mounts.append((path, folder))
            }
        }
        let inits = pod["initContainers"] as? [[String: Any]] ?? []
        for container in inits + [main] { try mount(container) }
        func mapped(_ path: String) -> String {
            for m in mounts.sorted(by: { $0.path.count > $1.path.count }) where path == m.path || path.hasPrefix(m.path + "/") {
                return m.folder.path + path.dropFirst(m.path.count)
            }
            return path
        }

        // A real key, with a connection sealed by it, made as root by the first connect.
        let fake = try GraphFake(scenario: GraphScenario(pages: [.init(id: "1001", name: "Page 1001", forms: [.init(id: "10010", name: "Form")])],
                                                         tokens: [{ var t = GraphScenario.Token(token: "EAAB-pod-token", pages: ["1001"]); t.type = "USER"; return t }()]),
                                 now: Self.now)
        let databaseURL = try TestDatabase.create("pod")
        let setup = try Repository.temporaryFolder("podsetup")
        var environment = LeadFlowBinary.environment(databaseURL: databaseURL, home: setup, graphURL: fake.baseURL, now: Self.now)
        let connect = try await runProgram(LeadFlowBinary.path, ["connect", "--instance", "acme", "--page", "1001", "--name", "acme-1001"],
                                     environment: environment, input: Data("EAAB-pod-token\n".utf8))
        #expect(connect.status == 0, "\(connect.stderr)")

        // kubelet's Secret file: root-owned, defaultMode; with fsGroup, group fsGroup and group read added.
        let initMounts = inits.flatMap { $0["volumeMounts"] as? [[String: Any]] ?? [] }
        let secretMount = try #require(initMounts.first { $0["name"] as? String == secretVolume["name"] as? String }?["mountPath"] as? String,
                                       "no init container mounts the Secret")
        let mountedKey = mapped(secretMount + "/" + keyFileName)
        let erasureItem = (secret["items"] as? [[String: Any]])?.first { $0["key"] as? String == "erasure.key" }
        let mountedErasureKey = mapped(secretMount + "/" + (erasureItem?["path"] as? String ?? "erasure.key"))
        for (file, mounted) in [("token.key", mountedKey), ("erasure.key", mountedErasureKey)] {
            try FileManager.default.copyItem(atPath: setup.appendingPathComponent(file).path, toPath: mounted)
            chown(mounted, 0, gid_t(fsGroup ?? 0))
            chmod(mounted, mode_t(fsGroup == nil ? mode : mode | 0o440))
        }

        // The container's processes: runAsUser, runAsGroup, and fsGroup as a supplementary group.
        let groups = Set([gid] + (fsGroup.map { [$0] } ?? [])).map(String.init).joined(separator: ",")
        let asPodUser = ["--reuid=\(uid)", "--regid=\(gid)", "--groups=\(groups)", "--"]
        for container in inits {
            let command = (container["command"] as? [String] ?? []) + (container["args"] as? [String] ?? [])
            let result = try await runProgram("/usr/bin/setpriv", asPodUser + command.map(mapped), in: root)
            #expect(result.status == 0, "init container \(container["name"] ?? ""): \(result.stderr)")
        }

        environment["LEADFLOW_HOME"] = mapped("/var/lib/leadflow")
        environment["LEADFLOW_KEY_FILE"] = mapped(keyPath)
        let check = try await runProgram("/usr/bin/setpriv", asPodUser + [LeadFlowBinary.path, "check"], environment: environment, in: root)
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stderr.contains("acme-1001") && check.stderr.contains("healthy"), "\(check.stderr)")
        // The erasure key's copy, beside the token key's, is the pod user's to read too.
        let erase = try await runProgram("/usr/bin/setpriv", asPodUser + [LeadFlowBinary.path, "erase", "--lead", "1"], environment: environment,
                                         in: root)
        #expect(erase.status == 0, "\(erase.stderr)")

        // The Secret file as mounted: readable by the pod's user, and refused by the vault.
        environment["LEADFLOW_KEY_FILE"] = mountedKey
        let direct = try await runProgram("/usr/bin/setpriv", asPodUser + [LeadFlowBinary.path, "check"], environment: environment, in: root)
        #expect(direct.status == 64, "\(direct.stderr)")
        #expect(direct.stderr.contains("can be read by other users"), "\(direct.stderr)")
    }
}
