/// The graph of imports seen so far (files and `file:snippet` nodes), to refuse import cycles the
/// way Caddy does (`importgraph.go`): an edge that would close a cycle is an error.
struct ImportGraph {
    private var nodes: Set<[UInt8]> = []
    private var edges: [[UInt8]: [[UInt8]]] = [:]

    /// Adds a node (idempotent).
    mutating func addNode(_ name: String) {
        nodes.insert(Array(name.utf8))
    }

    /// Adds several nodes.
    mutating func addNodes(_ names: [String]) {
        for name in names { addNode(name) }
    }

    /// Removes nodes (their edges stay, as in Caddy).
    mutating func removeNodes(_ names: [String]) {
        for name in names { nodes.remove(Array(name.utf8)) }
    }

    /// Adds `from → to` for each `to`; throws Caddy's plain error text on a cycle.
    mutating func addEdges(from: String, to targets: [String]) throws(CaddyfileError) {
        for to in targets { try addEdge(from: from, to: to) }
    }

    private mutating func addEdge(from: String, to: String) throws(CaddyfileError) {
        let f = Array(from.utf8)
        let t = Array(to.utf8)
        guard nodes.contains(f), nodes.contains(t) else {
            throw CaddyfileError(message: "one of the nodes does not exist", style: .plain)
        }
        if willCycle(from: t, to: f) {
            throw CaddyfileError(
                message: "a cycle of imports exists between \(from) and \(to)", style: .plain)
        }
        if edges[f]?.contains(t) == true { return }
        edges[f, default: []].append(t)
    }

    /// Whether `to` is reachable from the successors of `from`.
    private func willCycle(from: [UInt8], to: [UInt8]) -> Bool {
        var visited: Set<[UInt8]> = []
        var stack = edges[from] ?? []
        while let node = stack.popLast() {
            if visited.insert(node).inserted {
                stack.append(contentsOf: edges[node] ?? [])
            }
        }
        return visited.contains(to)
    }
}
