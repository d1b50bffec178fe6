import Foundation
import TygerIO
import TygerModel

#if canImport(Glibc)
private import Glibc
#endif

/// Where the workers of a distributed run listen when they run on this machine: every replica's endpoints on
/// loopback, each on a port of its own (taken from the free ports the kernel hands out), since replicas of one
/// codespec cannot all have the port the codespec names.
///
/// A worker learns its ports from `TYGER_<ENDPOINT>_PORT`; the job finds the workers as upstream's job does, from
/// `TYGER_WORKER_NODES` and `TYGER_<ENDPOINT>_WORKER_ENDPOINT_ADDRESSES` (JSON arrays; `127.0.0.1` and
/// `127.0.0.1:<port>` here).
public struct WorkerEndpoints: Sendable, Hashable {
    /// The endpoint names, sorted.
    public let names: [String]
    /// Per replica, the port of each endpoint (in the order of ``names``).
    public let ports: [[Int]]

    public static let host = "127.0.0.1"

    /// Takes free loopback ports for `replicas` replicas of a worker codespec with `endpoints`.
    ///
    /// - Throws: `TygerRunEngineError` `.executorFailure` when the kernel gives no port.
    public static func allocate(endpoints: [String: Int], replicas: Int) throws -> WorkerEndpoints {
        let names = endpoints.keys.sorted()
        // Every port's socket stays bound until all are taken, so that no two endpoints get the same port.
        var bound: [Int32] = []
        defer { for fd in bound { close(fd) } }
        var ports: [[Int]] = []
        for _ in 0..<replicas {
            var replicaPorts: [Int] = []
            for _ in names {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { throw failure("socket") }
                bound.append(fd)
                var address = loopback(port: 0)
                let result = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard result == 0 else { throw failure("bind") }
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let named = withUnsafeMutablePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
                }
                guard named == 0 else { throw failure("getsockname") }
                replicaPorts.append(Int(UInt16(bigEndian: address.sin_port)))
            }
            ports.append(replicaPorts)
        }
        return WorkerEndpoints(names: names, ports: ports)
    }

    /// The variables that give a worker its ports, `TYGER_<ENDPOINT>_PORT`, in the order of ``names``.
    public var portVariables: [String] { names.map { "TYGER_\($0.uppercased())_PORT" } }

    /// `TYGER_<ENDPOINT>_PORT` for worker replica `replica`.
    public func workerEnvironment(replica: Int) -> [String: String] {
        var environment: [String: String] = [:]
        for (index, variable) in portVariables.enumerated() {
            environment[variable] = String(ports[replica][index])
        }
        return environment
    }

    /// `TYGER_WORKER_NODES` and `TYGER_<ENDPOINT>_WORKER_ENDPOINT_ADDRESSES`, for the job: the workers on `hosts`
    /// (one per replica), or on loopback (`nil`).
    public func jobEnvironment(hosts: [String]? = nil) -> [String: String] {
        let endpoints = names.enumerated().map { index, name in (name: name, ports: ports.map { $0[index] }) }
        let nodes = hosts ?? ports.map { _ in Self.host }
        let variables = WorkerVariables.forJob(nodes: nodes, endpoints: endpoints)
        return Dictionary(variables.map { ($0.name, $0.value) }) { first, _ in first }
    }

    /// The endpoints that do not accept a TCP connection yet (asking `accepts`), as
    /// `worker <replica> endpoint '<name>' (port <port>)`.
    public func notAccepting(_ accepts: (_ replica: Int, _ port: Int) async -> Bool) async -> [String] {
        var waiting: [String] = []
        for (replica, replicaPorts) in ports.enumerated() {
            for (index, port) in replicaPorts.enumerated() where !(await accepts(replica, port)) {
                waiting.append("worker \(replica) endpoint '\(names[index])' (port \(port))")
            }
        }
        return waiting
    }

    /// Whether something accepts TCP connections on `127.0.0.1:port` (a loopback connect answers at once).
    public static func accepts(port: Int) -> Bool { TCPProbe.accepts(host: host, port: port) }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }

    private static func failure(_ call: String) -> TygerRunEngineError {
        TygerRunEngineError(
            .executorFailure,
            "cannot take a loopback port for a worker endpoint (\(call): \(String(cString: strerror(errno))))"
        )
    }

}
