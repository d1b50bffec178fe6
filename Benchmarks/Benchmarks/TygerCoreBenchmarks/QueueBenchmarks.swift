import Benchmark
import TygerBenchmarkSupport
import TygerCore

/// Elements per iteration of the handoff-queue benchmarks.
private let handoffItems = 200_000

/// `HandoffQueue` between a blocking thread and an async task (both directions, as the write and read pipelines use
/// it), and `BlockRing` acquire/release round trips.
func queueBenchmarks() {
    // The write pipeline's shape: the chunker thread pushes, async encoder tasks pop.
    Benchmark(
        "HandoffQueue thread push -> async pop (cap 16)",
        configuration: BenchmarkPresets.stream(BenchmarkPresets.itemMetrics, maxIterations: 50)
    ) { benchmark async in
        let queue = HandoffQueue<Int>(capacity: 16)
        var sum = 0
        await benchmark.measure(items: handoffItems) {
            BenchmarkThread.start {
                for i in 0..<handoffItems {
                    try! queue.pushBlocking(i)  // never throws: nobody fails this queue
                }
                queue.close()
            }
            while let value = try! await queue.pop() {  // never throws: nobody fails this queue
                sum &+= value
            }
        }
        precondition(sum == handoffItems * (handoffItems - 1) / 2, "lost items: sum \(sum)")
    }

    // The read pipeline's shape: async verify tasks push, the output pump thread pops.
    Benchmark(
        "HandoffQueue async push -> thread pop (cap 16)",
        configuration: BenchmarkPresets.stream(BenchmarkPresets.itemMetrics, maxIterations: 50)
    ) { benchmark async in
        let queue = HandoffQueue<Int>(capacity: 16)
        let done = HandoffQueue<Int>(capacity: 1)
        var sum: Int?
        await benchmark.measure(items: handoffItems) {
            BenchmarkThread.start {
                var sum = 0
                while let value = try! queue.popBlocking() {  // never throws: nobody fails this queue
                    sum &+= value
                }
                try! done.pushBlocking(sum)
            }
            for i in 0..<handoffItems {
                try! await queue.push(i)
            }
            queue.close()
            sum = try! await done.pop()  // never throws: nobody fails this queue
        }
        precondition(sum == handoffItems * (handoffItems - 1) / 2, "lost items: sum \(String(describing: sum))")
    }

    Benchmark("BlockRing acquireBlocking + release", configuration: BenchmarkPresets.operations()) {
        (benchmark: Benchmark, ring: BlockRing) in
        for _ in benchmark.scaledIterations {
            let block = try! ring.acquireBlocking()!  // never nil or throwing: the ring is never shut down
            ring.release(block)
        }
    } setup: {
        BlockRing(capacity: 4, blockSize: 4096)
    }

    Benchmark("BlockRing acquire (async) + release", configuration: BenchmarkPresets.operations()) {
        (benchmark: Benchmark, ring: BlockRing) async in
        for _ in benchmark.scaledIterations {
            let block = try! await ring.acquire()!  // never nil or throwing: the ring is never shut down
            ring.release(block)
        }
    } setup: {
        BlockRing(capacity: 4, blockSize: 4096)
    }
}
