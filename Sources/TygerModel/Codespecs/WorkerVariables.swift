/// The variables upstream gives the job of a distributed run to find its workers, in one place for every executor
/// and for the Kubernetes objects.
public enum WorkerVariables {
    /// `TYGER_WORKER_NODES` (a JSON array of the workers' hosts), then `TYGER_<ENDPOINT>_WORKER_ENDPOINT_ADDRESSES`
    /// for each endpoint in the order given (a JSON array of `host:port`, one per worker).
    ///
    /// - Parameters:
    ///   - nodes: Each worker's host, in replica order.
    ///   - endpoints: Each endpoint's name and, in replica order, each worker's port for it.
    public static func forJob(
        nodes: [String],
        endpoints: [(name: String, ports: [Int])]
    ) -> [(
        name: String, value: String
    )] {
        [("TYGER_WORKER_NODES", jsonArray(nodes))]
            + endpoints.map { endpoint in
                (
                    "TYGER_\(endpoint.name.uppercased())_WORKER_ENDPOINT_ADDRESSES",
                    jsonArray(zip(nodes, endpoint.ports).map { "\($0):\($1)" })
                )
            }
    }

    private static func jsonArray(_ items: [String]) -> String {
        "[" + items.map { "\"\($0)\"" }.joined(separator: ",") + "]"
    }
}
