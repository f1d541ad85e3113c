import Foundation
import LeadFlowArchive
import LeadFlowCore
import LeadFlowGraph
import LeadFlowHTTP
import LeadFlowPostgres
import LeadFlowStages
import LeadFlowStore
import Logging

/// Builds the parts a command needs from the environment: the database (migrated), the
/// token vault, the Graph client. The only place that knows which adapter serves which protocol.
struct Wiring {
    let environment: Environment
    let now: Date
    /// The command's own session (its queries run on the session's thread).
    let database: PostgresSession
    /// How to open another session on the same database (the crew's lanes).
    let conninfo: String
    /// LeadFlow's own Postgres when DATABASE_URL is unset; stopped when the command ends.
    let cluster: EmbeddedCluster?
    let logger: Logger
    let pipeline: Pipeline

    init(environment: Environment = Environment(), pipeline: Pipeline = Pipeline(name: "built-in defaults"),
         logger: Logger = Logger(label: "leadflow")) async throws {
        self.environment = environment
        self.pipeline = pipeline
        self.logger = logger
        now = try environment.now()
        (database, cluster, conninfo) = try await Self.openDatabase(environment, logger: logger)
        // Every command that touches the database brings its schema up to date first;
        // an advisory lock makes this safe from many workers at once.
        let now = now
        try await database.run { try Migrator(logger: logger).migrate($0, now: now) }
    }

    /// DATABASE_URL's database, or LeadFlow's own cluster under LEADFLOW_HOME when it is unset.
    /// The own cluster is for the demo and for trying LeadFlow out: a production command that
    /// lands on it says so in one line (kept under --quiet), so nobody runs production on it
    /// by accident.
    static func openDatabase(_ environment: Environment, logger: Logger) async throws -> (PostgresSession, EmbeddedCluster?, String) {
        if let url = try environment.databaseURL() {
            return (try await PostgresSession.connect(conninfo: url, logger: logger), nil, url)
        }
        let cluster = try EmbeddedCluster.start(home: try environment.home, serverBinaries: environment.postgresBinaries, logger: logger)
        Output.say("leadflow: DATABASE_URL is unset: using LeadFlow's own Postgres in \(cluster.dataDirectory.path), meant for trying LeadFlow out; set DATABASE_URL (or DATABASE_URL_FILE) for production",
                   level: .warning)
        return (try await PostgresSession.connect(conninfo: cluster.conninfo, logger: logger), cluster, cluster.conninfo)
    }

    var connections: ConnectionStore { ConnectionStore(database) }

    /// Which key files this command may open or create (`KeyCustody`).
    var custody: KeyCustody {
        get throws { KeyCustody(session: database, tokenKeyFile: try environment.keyFile, erasureKeyFile: try environment.erasureKeyFile) }
    }

    /// The token key. Only the first `connect` into a database with no connection creates
    /// it (`forFirstConnect`); any other command, and `connect` once connections exist, fails
    /// naming the path it expected: a key made silently later (another folder, another host,
    /// a lost volume) seals new tokens that no other run can open and leaves the old ones
    /// sealed under a key nobody has.
    func vault(forFirstConnect: Bool = false) async throws -> TokenVault {
        try await custody.tokenVault(forFirstConnect: forFirstConnect)
    }

    /// The erasure key, never made here (only the first `connect` makes one).
    func erasureKey() async throws -> ErasureKey {
        try await custody.erasureKey(now: now)
    }

    /// - Parameter usageBoard: shared with the other workers of the app (run and backfill).
    func graph(usageBoard: (any UsageBoard)? = nil) throws -> GraphClient {
        let transport = try CurlHTTPClient(configuration: .init(maxConcurrentTransfers: pipeline.graph.concurrency), logger: logger)
        return GraphClient(transport: transport,
                           configuration: .init(baseURL: try environment.graphURL(default: pipeline.graph.baseURL),
                                                apiVersion: environment.graphVersion ?? pipeline.graph.apiVersion,
                                                pageSize: pipeline.graph.pageSize, appSecret: try environment.appSecret(),
                                                retry: RetryPolicy(maxRateLimitWait: .seconds(pipeline.graph.maxRateLimitWaitSeconds)),
                                                requestTimeout: .seconds(pipeline.graph.timeoutSeconds)),
                           logger: logger, usageBoard: usageBoard)
    }

    /// The stages of `run` and `backfill`, on the pipeline's settings. With `workers`, the
    /// connections are claimed from the work queue by that many lanes, each on a Postgres
    /// session of its own, sharing one Graph client (one curl multi handle) and the app's
    /// usage through Postgres.
    func runStage(workers: WorkerSettings? = nil) async throws -> RunStage {
        let archiver = TarArchiver(home: try environment.home, folder: pipeline.archive.folder,
                                   compression: ArchiveCompression(rawValue: pipeline.archive.compression) ?? .zstd)
        let board = try workers.map {
            try PostgresUsageBoard(conninfo: conninfo, appID: environment.appID ?? "unknown-app", workerID: $0.workerID)
        }
        let graph = try graph(usageBoard: board)
        let sealer = try await vault()
        let erasure = try await erasureKey()
        let settings = try validationSettings()
        let spoolRoot = try environment.home.appendingPathComponent("spool")
        let (lanePipeline, laneLogger, laneConninfo) = (pipeline, logger, conninfo)
        // Leases (the run's, each connection's) are renewed on a session of their own: a
        // lane's session may be in a long COPY when its turn comes.
        let keeper = LeadStore(try PostgresSession(conninfo: conninfo, logger: logger))
        let crew = workers.map { workers in
            Crew(settings: workers, makeLane: {
                let session = try PostgresSession(conninfo: laneConninfo, logger: laneLogger)
                // A worker frozen inside a transaction (stopped, swapped out) would hold its
                // connection's row lock past its lease; Postgres ends such a session instead.
                try session.runBlocking {
                    try $0.query("SELECT set_config('idle_in_transaction_session_timeout', $1, false)",
                                 [String(workers.lease.milliseconds)], label: "idle transaction timeout")
                    // No statement of a run waits for ever (a lock nobody releases, a hung disk).
                    try $0.query("SELECT set_config('statement_timeout', $1, false)",
                                 [String(lanePipeline.workers.statementTimeoutSeconds * 1000)], label: "statement timeout")
                }
                return Crew.Lane(stage: RunStage(graph: graph, connections: ConnectionStore(session), leads: LeadStore(session),
                                                 archiver: archiver, sealer: sealer, erasure: erasure, pipeline: lanePipeline,
                                                 settings: settings, spoolRoot: spoolRoot, leaseKeeper: keeper),
                                 queue: WorkQueueStore(session))
            }, makeQueue: { WorkQueueStore(try PostgresSession(conninfo: laneConninfo, logger: laneLogger)) })
        }
        return RunStage(graph: graph, connections: connections, leads: LeadStore(database), archiver: archiver, sealer: sealer,
                        erasure: erasure, pipeline: pipeline, settings: settings, spoolRoot: spoolRoot, crew: crew,
                        runLease: workers?.lease ?? .seconds(pipeline.workers.leaseSeconds), leaseKeeper: keeper)
    }

    /// The outbox's notifier: the webhook over its own libcurl client, mail over SMTP
    /// through libcurl, each only when configured.
    func notifier() async throws -> Notifier {
        let configuration = pipeline.notifications
        let settings = try environment.notificationSettings(configuration)
        let webhook = try settings.webhook.map { _ in
            try CurlHTTPClient(configuration: .init(maxConcurrentTransfers: 1, maxCachedConnections: 1), logger: logger)
        }
        let mail = try environment.smtpServer(configuration).map { server in
            try CurlMailSender(configuration: .init(url: server.url, username: server.user, password: server.password,
                                                    startTLS: server.startTLS), logger: logger)
        }
        return Notifier(repository: NotificationStore(database), settings: settings, webhook: webhook, mail: mail, sealer: try await vault(),
                        logger: logger)
    }

    func validationSettings() throws -> ValidationSettings {
        ValidationSettings(appID: environment.appID, appSecret: try environment.appSecret(),
                           requiredPermissions: pipeline.requiredPermissions, policy: pipeline.tokenPolicy)
    }
}

func days(_ interval: TimeInterval) -> String {
    String(format: "%.1f", interval / 86_400)
}
