// MPI_COMM_WORLD of Open MPI, loaded at run time with dlopen so Fusion builds and runs without
// MPI installed. Not an MPI binding: only the handful of calls data-parallel training uses.
// Open MPI's predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, …) are the addresses of
// exported globals (mpi.h: `#define MPI_COMM_WORLD ((MPI_Comm) &ompi_mpi_comm_world)`), so dlsym
// of those symbol names yields the handles. MPICH-family libraries use integer handles and are
// not supported.
import Foundation

/// The MPI world communicator (Open MPI ≥ 4, `libmpi.so.40`), opened with `MPI_Init` on first
/// use and closed by `finalize()`. All calls come from the thread that created it.
///
/// ```swift
/// // mpirun -np 2 fusion train recipes/quickstart.yaml
/// let comm = try MPICommunicator()
/// print(comm.rank, comm.size)
/// comm.finalize()
/// ```
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    private let mpi: LibMPI
    private var finalized = false

    public init() throws {
        // Waiting ranks yield their core instead of spinning (Open MPI's default): on machines
        // whose cores are shared (ranks × threads ≥ cores, other jobs) spinning starves the rank
        // being waited for. Costs microseconds per wait; set the variable to 0 to spin.
        setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0)
        mpi = try LibMPI.load()
        var initialized: Int32 = 0
        try mpi.check(mpi.initialized(&initialized), "MPI_Initialized")
        if initialized == 0 { try mpi.check(mpi.initialize(nil, nil), "MPI_Init") }
        var r: Int32 = 0, s: Int32 = 0
        try mpi.check(mpi.commRank(mpi.commWorld, &r), "MPI_Comm_rank")
        try mpi.check(mpi.commSize(mpi.commWorld, &s), "MPI_Comm_size")
        rank = Int(r); size = Int(s)
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        for (lo, n) in chunks(count) {
            must(mpi.allreduce(LibMPI.inPlace, buffer + lo, n, mpi.float, mpi.sum, mpi.commWorld), "MPI_Allreduce")
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        for (lo, n) in chunks(count) {
            must(mpi.allreduce(LibMPI.inPlace, buffer + lo, n, mpi.double, mpi.sum, mpi.commWorld), "MPI_Allreduce")
        }
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction {
        let requests = chunks(count).map { (lo, n) -> UnsafeMutableRawPointer? in
            var request: UnsafeMutableRawPointer?
            must(mpi.iallreduce(LibMPI.inPlace, buffer + lo, n, mpi.float, mpi.sum, mpi.commWorld, &request), "MPI_Iallreduce")
            return request
        }
        return Request(mpi: mpi, requests: requests)
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        for (lo, n) in chunks(bytes) {
            must(mpi.bcast(buffer + lo, n, mpi.byte, Int32(root), mpi.commWorld), "MPI_Bcast")
        }
    }

    public func barrier() { must(mpi.barrier(mpi.commWorld), "MPI_Barrier") }

    public func abort(code: Int32) -> Never {
        _ = mpi.abort(mpi.commWorld, code)
        exit(code)
    }

    public func finalize() {
        guard !finalized else { return }
        finalized = true
        must(mpi.finalize(), "MPI_Finalize")
    }

    /// MPI counts are C ints: split longer buffers.
    private func chunks(_ count: Int) -> [(Int, Int32)] {
        let step = 1 << 30
        return stride(from: 0, to: max(count, 1), by: step).map { ($0, Int32(min(step, count - $0))) }
    }

    private func must(_ code: Int32, _ call: String) {
        do { try mpi.check(code, call) } catch { fatalError("\(error)") }
    }

    /// MPI_Request handles of one reduction (one per chunk).
    final class Request: PendingReduction {
        let mpi: LibMPI
        var requests: [UnsafeMutableRawPointer?]
        var done = false

        init(mpi: LibMPI, requests: [UnsafeMutableRawPointer?]) { self.mpi = mpi; self.requests = requests }

        func test() -> Bool {
            if done { return true }
            var flag: Int32 = 0
            let n = Int32(requests.count)
            let code = requests.withUnsafeMutableBufferPointer { mpi.testall(n, $0.baseAddress!, &flag, nil) }
            precondition(code == 0, "MPI_Testall failed with code \(code)")
            done = flag != 0
            return done
        }

        func wait() {
            if done { return }
            let n = Int32(requests.count)
            let code = requests.withUnsafeMutableBufferPointer { mpi.waitall(n, $0.baseAddress!, nil) }
            precondition(code == 0, "MPI_Waitall failed with code \(code)")
            done = true
        }
    }
}

/// The MPI entry points and predefined handles, resolved from libmpi with dlsym.
struct LibMPI {
    typealias Handle = UnsafeMutableRawPointer
    static let inPlace = UnsafeRawPointer(bitPattern: 1)  // MPI_IN_PLACE in Open MPI's mpi.h

    let initialize: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32
    let initialized: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let finalize: @convention(c) () -> Int32
    let abort: @convention(c) (Handle, Int32) -> Int32
    let commRank: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let commSize: @convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let allreduce: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    let iallreduce: @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle,
                                    UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int32
    let testall: @convention(c) (Int32, UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutablePointer<Int32>,
                                 UnsafeMutableRawPointer?) -> Int32
    let waitall: @convention(c) (Int32, UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutableRawPointer?) -> Int32
    let bcast: @convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    let barrier: @convention(c) (Handle) -> Int32
    let errorString: @convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32
    let commWorld: Handle, float: Handle, double: Handle, byte: Handle, sum: Handle

    /// Libraries tried in order: `FUSION_MPI_LIBRARY` (a path or soname) when set, else the
    /// sonames of Open MPI 4 and 5.
    static var libraries: [String] {
        if let lib = ProcessInfo.processInfo.environment["FUSION_MPI_LIBRARY"], !lib.isEmpty { return [lib] }
        return ["libmpi.so.40", "libmpi.so"]
    }

    static func load() throws -> LibMPI {
        // RTLD_GLOBAL: Open MPI's components are plugins that resolve libmpi's symbols.
        var reasons: [String] = []
        var lib: UnsafeMutableRawPointer?
        for name in libraries {
            lib = dlopen(name, RTLD_NOW | RTLD_GLOBAL)
            if lib != nil { break }
            reasons.append(dlerror().map { String(cString: $0) } ?? name)
        }
        guard let lib else {
            throw CollectiveError.mpiUnavailable("""
                this process was launched by mpirun but Open MPI's libmpi cannot be loaded \
                (\(reasons.joined(separator: "; "))). Install Open MPI: apt-get install -y libopenmpi-dev openmpi-bin
                """)
        }
        func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
            guard let p = dlsym(lib, name) else {
                throw CollectiveError.mpiUnavailable("libmpi has no symbol \(name): Fusion needs Open MPI ≥ 4 (apt-get install -y libopenmpi-dev openmpi-bin)")
            }
            return p
        }
        func function<F>(_ name: String, as: F.Type) throws -> F { unsafeBitCast(try symbol(name), to: F.self) }
        return LibMPI(
            initialize: try function("MPI_Init", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32).self),
            initialized: try function("MPI_Initialized", as: (@convention(c) (UnsafeMutablePointer<Int32>) -> Int32).self),
            finalize: try function("MPI_Finalize", as: (@convention(c) () -> Int32).self),
            abort: try function("MPI_Abort", as: (@convention(c) (Handle, Int32) -> Int32).self),
            commRank: try function("MPI_Comm_rank", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self),
            commSize: try function("MPI_Comm_size", as: (@convention(c) (Handle, UnsafeMutablePointer<Int32>) -> Int32).self),
            allreduce: try function("MPI_Allreduce", as: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32).self),
            iallreduce: try function("MPI_Iallreduce", as: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle,
                                                                            UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int32).self),
            testall: try function("MPI_Testall", as: (@convention(c) (Int32, UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutablePointer<Int32>,
                                                                      UnsafeMutableRawPointer?) -> Int32).self),
            waitall: try function("MPI_Waitall", as: (@convention(c) (Int32, UnsafeMutablePointer<UnsafeMutableRawPointer?>, UnsafeMutableRawPointer?) -> Int32).self),
            bcast: try function("MPI_Bcast", as: (@convention(c) (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32).self),
            barrier: try function("MPI_Barrier", as: (@convention(c) (Handle) -> Int32).self),
            errorString: try function("MPI_Error_string", as: (@convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32).self),
            commWorld: try symbol("ompi_mpi_comm_world"), float: try symbol("ompi_mpi_float"),
            double: try symbol("ompi_mpi_double"), byte: try symbol("ompi_mpi_byte"), sum: try symbol("ompi_mpi_op_sum"))
    }

    /// Throws a readable error for a non-zero MPI return code.
    func check(_ code: Int32, _ call: String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 1024)  // ≥ MPI_MAX_ERROR_STRING (256)
        var length: Int32 = 0
        _ = errorString(code, &text, &length)
        throw CollectiveError.mpi("\(call) failed: \(String(cString: text)) (code \(code))")
    }
}
