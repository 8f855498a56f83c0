// The process group a data-parallel run trains in: rank, size and the collectives the trainer
// needs (sum-allreduce, broadcast, barrier). Not a transport: MPI (MPICommunicator: Open MPI or
// MPICH) moves the bytes; a run that was not started by an MPI launcher gets SingleProcess, where
// every collective is a no-op.
import Foundation

/// A group of `size` cooperating processes, this one being `rank` (0-based).
///
/// ```swift
/// let comm = try Collective.fromEnvironment()   // MPI under mpirun, else a single process
/// var stats: [Double] = [loss, Double(tokens)]
/// comm.allreduceSum(&stats)                     // sums over every rank, in place
/// if comm.rank == 0 { print(stats) }
/// comm.finalize()
/// ```
public protocol Communicator: AnyObject {
    /// This process's index in the group, 0..<size. Rank 0 writes logs and checkpoints.
    var rank: Int { get }
    /// How many processes the group holds.
    var size: Int { get }
    /// How many of them run on this machine, sharing its cores and memory (this one included).
    var localRanks: Int { get }
    /// Replaces `count` floats at `buffer` by their elementwise sum over all ranks.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Replaces `count` doubles at `buffer` by their elementwise sum over all ranks.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Starts a non-blocking in-place sum of `count` floats; `buffer` must stay untouched until
    /// the returned reduction completes.
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction
    /// Copies `bytes` bytes at `buffer` from rank `root` to every other rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int)
    /// Returns once every rank has called it.
    func barrier()
    /// Ends the whole group at once (another rank may be blocked in a collective).
    func abort(code: Int32) -> Never
    /// Leaves the group; call once, after the last collective.
    func finalize()
}

/// A sum-allreduce in flight.
public protocol PendingReduction: AnyObject {
    /// True once the result is in the buffer; also lets the transport make progress.
    func test() -> Bool
    /// Blocks until the result is in the buffer.
    func wait()
}

extension Communicator {
    /// Sums `values` over all ranks.
    public func allreduceSum(_ values: inout [Double]) {
        let n = values.count
        values.withUnsafeMutableBufferPointer { allreduceSum($0.baseAddress!, count: n) }
    }

    /// Sums `values` over all ranks.
    public func allreduceSum(_ values: inout [Float]) {
        let n = values.count
        values.withUnsafeMutableBufferPointer { allreduceSum($0.baseAddress!, count: n) }
    }

    /// Copies `values` from rank `root` to every rank (all ranks pass arrays of the same count).
    public func broadcast(_ values: inout [Float], root: Int = 0) {
        let n = values.count
        values.withUnsafeMutableBytes { broadcast($0.baseAddress!, bytes: n * 4, root: root) }
    }
}

/// The group of one: what every run is without mpirun. Collectives return at once.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localRanks: Int { 1 }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction { Completed() }
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
    public func barrier() {}
    public func abort(code: Int32) -> Never { exit(code) }
    public func finalize() {}

    final class Completed: PendingReduction {
        func test() -> Bool { true }
        func wait() {}
    }
}

/// Errors setting up a process group.
public enum CollectiveError: Error, CustomStringConvertible {
    case mpiUnavailable(String)
    case mpi(String)

    public var description: String {
        switch self {
        case .mpiUnavailable(let m), .mpi(let m): return m
        }
    }
}

public enum Collective {
    /// True when this process was started by an MPI launcher: Open MPI's mpirun/mpiexec
    /// (OMPI_*), a PMIx launcher such as srun --mpi=pmix (PMIX_RANK), or a PMI one such as MPICH's
    /// mpiexec (Hydra) or srun --mpi=pmi2 (PMI_SIZE). Such a process that cannot load MPI stops
    /// instead of silently training N copies of one run.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { env[$0] != nil }
    }

    /// How many ranks the launcher says it started, when it says: Open MPI's mpirun and PMI
    /// launchers (MPICH's Hydra, srun --mpi=pmi2) do, PMIx-only ones do not.
    public static var launcherRanks: Int? {
        let env = ProcessInfo.processInfo.environment
        return (env["OMPI_COMM_WORLD_SIZE"] ?? env["PMI_SIZE"]).flatMap { Int($0) }
    }

    /// MPI (loading Open MPI's or MPICH's library at run time) when started by an MPI launcher,
    /// otherwise a SingleProcess. Throws, saying what to install, when a launcher started us but
    /// no MPI library loads, or the one that loads does not belong to the launcher.
    public static func fromEnvironment() throws -> Communicator {
        launchedByMPI ? try MPICommunicator() : SingleProcess()
    }
}
