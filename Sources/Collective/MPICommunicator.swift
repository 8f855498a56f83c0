// MPI_COMM_WORLD of Open MPI or of an MPICH-family library (MPICH, Intel MPI, MVAPICH, Cray
// MPICH: the libraries that share the "MPICH ABI", libmpich.so.12 / libmpi.so.12), loaded at run
// time with dlopen so Fusion builds and runs without MPI installed. Not an MPI binding: only the
// handful of calls data-parallel training uses.
// The two ABIs have the same C functions but different handle types, so the calls are typed per
// ABI when the library is loaded (MPICalls(openMPI:) and MPICalls(mpich:)); everything above
// that (MPIWorld) is written once over the handle types:
// - Open MPI's handles are pointers, and its predefined ones (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM,
//   …) are the addresses of exported globals (mpi.h: `#define MPI_COMM_WORLD ((MPI_Comm)
//   &ompi_mpi_comm_world)`), so dlsym of those symbol names yields the handles.
// - MPICH's handles are C ints, and its predefined ones are constants compiled into programs
//   (mpich/mpi.h: `#define MPI_COMM_WORLD ((MPI_Comm)0x44000000)`), copied below from MPICH 4.0's
//   mpi.h. They are part of the ABI its family keeps stable across versions and vendors.
// A loaded library that exports `ompi_mpi_comm_world` is Open MPI; any other is taken to be of
// the MPICH ABI.
import Foundation

/// The MPI world communicator (Open MPI ≥ 4, `libmpi.so.40`, or the MPICH ABI, `libmpich.so.12`
/// / `libmpi.so.12`), opened with `MPI_Init` on first use and closed by `finalize()`. All calls
/// come from the thread that created it.
///
/// ```swift
/// // mpirun -np 2 fusion train recipes/quickstart.yaml   (or mpiexec.mpich -n 2 …, srun …)
/// let comm = try MPICommunicator()
/// print(comm.rank, comm.size, comm.localRanks, comm.library)
/// comm.finalize()
/// ```
public final class MPICommunicator: Communicator {
    /// The library in use and its ABI, e.g. "MPICH ABI: libmpich.so.12".
    public let library: String
    private let world: Communicator

    public init() throws {
        // Waiting ranks yield their core instead of spinning (Open MPI's default): on machines
        // whose cores are shared (ranks × threads ≥ cores, other jobs) spinning starves the rank
        // being waited for. Costs microseconds per wait; set the variable to 0 to spin.
        setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0)
        let lib = try MPILibrary.load()
        library = "\(lib.abi.rawValue): \(lib.name)"
        switch lib.abi {
        case .openMPI: world = try MPIWorld(try MPICalls(openMPI: lib))
        case .mpich: world = try MPIWorld(try MPICalls(mpich: lib))
        }
        // A library that cannot reach the launcher initialises as a world of one instead of
        // failing (Open MPI under MPICH's mpiexec, and the reverse): every rank would then train
        // the whole run alone, all writing the same run folder. The launcher's own count of ranks
        // catches that; a PMIx-only launch (srun --mpi=pmix) says no count and is not checked.
        if let started = Collective.launcherRanks, started != world.size {
            world.finalize()
            throw CollectiveError.mpiUnavailable("""
                the launcher started \(started) ranks but \(library) sees a world of \(world.size): this \
                library does not belong to the launcher. Start Fusion with the library's own launcher \
                (Open MPI: mpirun.openmpi; MPICH: mpiexec.mpich) or name the launcher's library in \
                FUSION_MPI_LIBRARY (Open MPI's is \(MPILibrary.openMPINames[0]), the MPICH ABI's \
                \(MPILibrary.mpichNames.joined(separator: " or ")))
                """)
        }
    }

    public var rank: Int { world.rank }
    public var size: Int { world.size }
    public var localRanks: Int { world.localRanks }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) { world.allreduceSum(buffer, count: count) }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) { world.allreduceSum(buffer, count: count) }
    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction {
        world.startAllreduceSum(buffer, count: count)
    }
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) { world.broadcast(buffer, bytes: bytes, root: root) }
    public func barrier() { world.barrier() }
    public func abort(code: Int32) -> Never { world.abort(code: code) }
    public func finalize() { world.finalize() }
}

/// MPI_COMM_WORLD through one library's calls; `Handle` is its MPI_Comm/MPI_Datatype/MPI_Op/
/// MPI_Info type and `Request` its MPI_Request.
final class MPIWorld<Handle, Request>: Communicator {
    let rank: Int
    let size: Int
    let localRanks: Int
    private let mpi: MPICalls<Handle, Request>
    private var finalized = false

    init(_ mpi: MPICalls<Handle, Request>) throws {
        self.mpi = mpi
        var initialized: Int32 = 0
        try mpi.check(mpi.initialized(&initialized), "MPI_Initialized")
        if initialized == 0 { try mpi.check(mpi.initialize(nil, nil), "MPI_Init") }
        var r: Int32 = 0, s: Int32 = 0
        try mpi.check(mpi.commRank(mpi.commWorld, &r), "MPI_Comm_rank")
        try mpi.check(mpi.commSize(mpi.commWorld, &s), "MPI_Comm_size")
        rank = Int(r); size = Int(s)
        // The ranks sharing this machine's memory, asked of MPI (MPI-3's shared-memory split)
        // rather than read from a launcher's variables, which every launcher names differently
        // (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS, SLURM_TASKS_PER_NODE, …). Callers only
        // need it after MPI_Init, so there is no environment fallback.
        var node = mpi.commWorld
        try mpi.check(mpi.commSplitType(mpi.commWorld, mpi.commTypeShared, 0, mpi.infoNull, &node), "MPI_Comm_split_type")
        var n: Int32 = 0
        try mpi.check(mpi.commSize(node, &n), "MPI_Comm_size")
        try mpi.check(mpi.commFree(&node), "MPI_Comm_free")
        localRanks = Int(n)
    }

    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        for (lo, n) in chunks(count) {
            must(mpi.allreduce(mpi.inPlace, buffer + lo, n, mpi.float, mpi.sum, mpi.commWorld), "MPI_Allreduce")
        }
    }

    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        for (lo, n) in chunks(count) {
            must(mpi.allreduce(mpi.inPlace, buffer + lo, n, mpi.double, mpi.sum, mpi.commWorld), "MPI_Allreduce")
        }
    }

    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction {
        let requests = chunks(count).map { (lo, n) -> Request in
            var request = mpi.requestNull
            must(mpi.iallreduce(mpi.inPlace, buffer + lo, n, mpi.float, mpi.sum, mpi.commWorld, &request), "MPI_Iallreduce")
            return request
        }
        return Reduction(mpi: mpi, requests: requests)
    }

    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        for (lo, n) in chunks(bytes) {
            must(mpi.bcast(buffer + lo, n, mpi.byte, Int32(root), mpi.commWorld), "MPI_Bcast")
        }
    }

    func barrier() { must(mpi.barrier(mpi.commWorld), "MPI_Barrier") }

    func abort(code: Int32) -> Never {
        _ = mpi.abort(mpi.commWorld, code)
        exit(code)
    }

    func finalize() {
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
    final class Reduction: PendingReduction {
        let mpi: MPICalls<Handle, Request>
        var requests: [Request]
        var done = false

        init(mpi: MPICalls<Handle, Request>, requests: [Request]) { self.mpi = mpi; self.requests = requests }

        func test() -> Bool {
            if done { return true }
            var flag: Int32 = 0
            let n = Int32(requests.count)
            let code = requests.withUnsafeMutableBufferPointer { mpi.testall(n, $0.baseAddress!, &flag, mpi.statusesIgnore) }
            precondition(code == 0, "MPI_Testall failed with code \(code)")
            done = flag != 0
            return done
        }

        func wait() {
            if done { return }
            let n = Int32(requests.count)
            let code = requests.withUnsafeMutableBufferPointer { mpi.waitall(n, $0.baseAddress!, mpi.statusesIgnore) }
            precondition(code == 0, "MPI_Waitall failed with code \(code)")
            done = true
        }
    }
}

/// The MPI entry points and predefined values of one library, typed for its ABI when loaded.
struct MPICalls<Handle, Request> {
    let initialize: (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32
    let initialized: (UnsafeMutablePointer<Int32>) -> Int32
    let finalize: () -> Int32
    let errorString: (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32
    let abort: (Handle, Int32) -> Int32
    let commRank: (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let commSize: (Handle, UnsafeMutablePointer<Int32>) -> Int32
    let commSplitType: (Handle, Int32, Int32, Handle, UnsafeMutablePointer<Handle>) -> Int32
    let commFree: (UnsafeMutablePointer<Handle>) -> Int32
    let allreduce: (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle) -> Int32
    let iallreduce: (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Handle, Handle, Handle, UnsafeMutablePointer<Request>) -> Int32
    let testall: (Int32, UnsafeMutablePointer<Request>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32
    let waitall: (Int32, UnsafeMutablePointer<Request>, UnsafeMutableRawPointer?) -> Int32
    let bcast: (UnsafeMutableRawPointer?, Int32, Handle, Int32, Handle) -> Int32
    let barrier: (Handle) -> Int32
    let commWorld: Handle, float: Handle, double: Handle, byte: Handle, sum: Handle, infoNull: Handle
    let requestNull: Request
    /// MPI_IN_PLACE, MPI_STATUSES_IGNORE and MPI_COMM_TYPE_SHARED: each ABI has its own values.
    let inPlace: UnsafeRawPointer?
    let statusesIgnore: UnsafeMutableRawPointer?
    let commTypeShared: Int32

    /// Throws a readable error for a non-zero MPI return code.
    func check(_ code: Int32, _ call: String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 1024)  // ≥ MPI_MAX_ERROR_STRING (Open MPI 256, MPICH 512)
        var length: Int32 = 0
        _ = errorString(code, &text, &length)
        throw CollectiveError.mpi("\(call) failed: \(String(cString: text)) (code \(code))")
    }
}

/// Open MPI's MPI_Comm, MPI_Datatype, MPI_Op, MPI_Info: pointers to library structs.
private typealias OMPIHandle = UnsafeMutableRawPointer
/// Open MPI's MPI_Request: a pointer, NULL until a call fills it.
private typealias OMPIRequest = UnsafeMutableRawPointer?
/// The MPICH ABI's MPI_Comm, MPI_Datatype, MPI_Op, MPI_Info and MPI_Request: C ints.
private typealias MPICHHandle = Int32

extension MPICalls where Handle == OMPIHandle, Request == OMPIRequest {
    /// Open MPI ≥ 4: handles from its exported globals, constants from its mpi.h (4.1).
    init(openMPI lib: MPILibrary) throws {
        initialize = try lib.function("MPI_Init", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32).self)
        initialized = try lib.function("MPI_Initialized", as: (@convention(c) (UnsafeMutablePointer<Int32>) -> Int32).self)
        finalize = try lib.function("MPI_Finalize", as: (@convention(c) () -> Int32).self)
        errorString = try lib.function("MPI_Error_string", as: (@convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32).self)
        abort = try lib.function("MPI_Abort", as: (@convention(c) (OMPIHandle, Int32) -> Int32).self)
        commRank = try lib.function("MPI_Comm_rank", as: (@convention(c) (OMPIHandle, UnsafeMutablePointer<Int32>) -> Int32).self)
        commSize = try lib.function("MPI_Comm_size", as: (@convention(c) (OMPIHandle, UnsafeMutablePointer<Int32>) -> Int32).self)
        commSplitType = try lib.function("MPI_Comm_split_type", as: (@convention(c) (OMPIHandle, Int32, Int32, OMPIHandle, UnsafeMutablePointer<OMPIHandle>) -> Int32).self)
        commFree = try lib.function("MPI_Comm_free", as: (@convention(c) (UnsafeMutablePointer<OMPIHandle>) -> Int32).self)
        allreduce = try lib.function("MPI_Allreduce", as: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, OMPIHandle, OMPIHandle, OMPIHandle) -> Int32).self)
        iallreduce = try lib.function("MPI_Iallreduce", as: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, OMPIHandle, OMPIHandle, OMPIHandle,
                                                                             UnsafeMutablePointer<OMPIRequest>) -> Int32).self)
        testall = try lib.function("MPI_Testall", as: (@convention(c) (Int32, UnsafeMutablePointer<OMPIRequest>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32).self)
        waitall = try lib.function("MPI_Waitall", as: (@convention(c) (Int32, UnsafeMutablePointer<OMPIRequest>, UnsafeMutableRawPointer?) -> Int32).self)
        bcast = try lib.function("MPI_Bcast", as: (@convention(c) (UnsafeMutableRawPointer?, Int32, OMPIHandle, Int32, OMPIHandle) -> Int32).self)
        barrier = try lib.function("MPI_Barrier", as: (@convention(c) (OMPIHandle) -> Int32).self)
        commWorld = try lib.symbol("ompi_mpi_comm_world")
        float = try lib.symbol("ompi_mpi_float")
        double = try lib.symbol("ompi_mpi_double")
        byte = try lib.symbol("ompi_mpi_byte")
        sum = try lib.symbol("ompi_mpi_op_sum")
        infoNull = try lib.symbol("ompi_mpi_info_null")
        requestNull = nil                                   // filled by MPI_Iallreduce before any use
        inPlace = UnsafeRawPointer(bitPattern: 1)           // #define MPI_IN_PLACE ((void *) 1)
        statusesIgnore = nil                                // #define MPI_STATUSES_IGNORE ((MPI_Status *) 0)
        commTypeShared = 0                                  // enum { MPI_COMM_TYPE_SHARED, OMPI_COMM_TYPE_HWTHREAD, … }
    }
}

extension MPICalls where Handle == MPICHHandle, Request == MPICHHandle {
    /// The MPICH ABI: constants from MPICH 4.0's mpi.h (/usr/include/x86_64-linux-gnu/mpich/mpi.h
    /// on Debian), the same in MPICH 3.1 and later and in the libraries that keep its ABI.
    init(mpich lib: MPILibrary) throws {
        initialize = try lib.function("MPI_Init", as: (@convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32).self)
        initialized = try lib.function("MPI_Initialized", as: (@convention(c) (UnsafeMutablePointer<Int32>) -> Int32).self)
        finalize = try lib.function("MPI_Finalize", as: (@convention(c) () -> Int32).self)
        errorString = try lib.function("MPI_Error_string", as: (@convention(c) (Int32, UnsafeMutablePointer<CChar>, UnsafeMutablePointer<Int32>) -> Int32).self)
        abort = try lib.function("MPI_Abort", as: (@convention(c) (MPICHHandle, Int32) -> Int32).self)
        commRank = try lib.function("MPI_Comm_rank", as: (@convention(c) (MPICHHandle, UnsafeMutablePointer<Int32>) -> Int32).self)
        commSize = try lib.function("MPI_Comm_size", as: (@convention(c) (MPICHHandle, UnsafeMutablePointer<Int32>) -> Int32).self)
        commSplitType = try lib.function("MPI_Comm_split_type", as: (@convention(c) (MPICHHandle, Int32, Int32, MPICHHandle, UnsafeMutablePointer<MPICHHandle>) -> Int32).self)
        commFree = try lib.function("MPI_Comm_free", as: (@convention(c) (UnsafeMutablePointer<MPICHHandle>) -> Int32).self)
        allreduce = try lib.function("MPI_Allreduce", as: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, MPICHHandle, MPICHHandle, MPICHHandle) -> Int32).self)
        iallreduce = try lib.function("MPI_Iallreduce", as: (@convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, MPICHHandle, MPICHHandle, MPICHHandle,
                                                                             UnsafeMutablePointer<MPICHHandle>) -> Int32).self)
        testall = try lib.function("MPI_Testall", as: (@convention(c) (Int32, UnsafeMutablePointer<MPICHHandle>, UnsafeMutablePointer<Int32>, UnsafeMutableRawPointer?) -> Int32).self)
        waitall = try lib.function("MPI_Waitall", as: (@convention(c) (Int32, UnsafeMutablePointer<MPICHHandle>, UnsafeMutableRawPointer?) -> Int32).self)
        bcast = try lib.function("MPI_Bcast", as: (@convention(c) (UnsafeMutableRawPointer?, Int32, MPICHHandle, Int32, MPICHHandle) -> Int32).self)
        barrier = try lib.function("MPI_Barrier", as: (@convention(c) (MPICHHandle) -> Int32).self)
        // Handles are C ints; written here as their bit patterns (several exceed Int32.max).
        commWorld = MPICHHandle(bitPattern: 0x4400_0000)    // #define MPI_COMM_WORLD ((MPI_Comm)0x44000000)
        float = MPICHHandle(bitPattern: 0x4c00_040a)        // #define MPI_FLOAT ((MPI_Datatype)0x4c00040a)
        double = MPICHHandle(bitPattern: 0x4c00_080b)       // #define MPI_DOUBLE ((MPI_Datatype)0x4c00080b)
        byte = MPICHHandle(bitPattern: 0x4c00_010d)         // #define MPI_BYTE ((MPI_Datatype)0x4c00010d)
        sum = MPICHHandle(bitPattern: 0x5800_0003)          // #define MPI_SUM (MPI_Op)(0x58000003)
        infoNull = MPICHHandle(bitPattern: 0x1c00_0000)     // #define MPI_INFO_NULL ((MPI_Info)0x1c000000)
        requestNull = MPICHHandle(bitPattern: 0x2c00_0000)  // #define MPI_REQUEST_NULL ((MPI_Request)0x2c000000)
        inPlace = UnsafeRawPointer(bitPattern: -1)          // #define MPI_IN_PLACE (void *) -1
        statusesIgnore = UnsafeMutableRawPointer(bitPattern: 1)  // #define MPI_STATUSES_IGNORE (MPI_Status *)1
        commTypeShared = 1                                  // #define MPI_COMM_TYPE_SHARED 1
    }
}

/// A dlopen'ed MPI library and which ABI it has.
struct MPILibrary {
    enum ABI: String {
        case openMPI = "Open MPI"
        case mpich = "MPICH ABI"
    }

    /// What was asked of dlopen (a soname or a path).
    let name: String
    let abi: ABI
    private let handle: UnsafeMutableRawPointer

    /// The Open MPI sonames (4.x and 5.x are both libmpi.so.40), then the MPICH ABI's: MPICH's own
    /// Debian/Ubuntu/Fedora name and the name Intel MPI, MVAPICH and Cray MPICH use.
    static let openMPINames = ["libmpi.so.40"]
    static let mpichNames = ["libmpich.so.12", "libmpi.so.12"]

    /// The kind of launcher that started this process, from the variables it sets: Open MPI's
    /// mpirun (OMPI_COMM_WORLD_SIZE), a PMI one such as MPICH's mpiexec (Hydra) or srun
    /// --mpi=pmi2 (PMI_RANK without PMIX_RANK), or another (srun --mpi=pmix), which Open MPI
    /// joins and MPICH too where it was built with PMIx.
    enum Launcher { case openMPI, pmi, other }

    static var launcher: Launcher {
        let env = ProcessInfo.processInfo.environment
        if env["OMPI_COMM_WORLD_SIZE"] != nil { return .openMPI }
        return env["PMI_RANK"] != nil && env["PMIX_RANK"] == nil ? .pmi : .other
    }

    /// Libraries tried in order: `FUSION_MPI_LIBRARY` (a path or soname) when set; else the
    /// launcher's own library first, as a library cannot join another's launcher. `libmpi.so`
    /// (the development link, to whichever MPI the system selected) comes last.
    static var candidates: [String] {
        if let lib = ProcessInfo.processInfo.environment["FUSION_MPI_LIBRARY"], !lib.isEmpty { return [lib] }
        switch launcher {
        case .openMPI: return openMPINames + ["libmpi.so"]
        case .pmi: return mpichNames + openMPINames + ["libmpi.so"]
        case .other: return openMPINames + mpichNames + ["libmpi.so"]
        }
    }

    /// The packages that provide the launcher's library, for error messages.
    static var installAdvice: String {
        let openMPI = "Open MPI (mpirun): apt-get install -y libopenmpi-dev openmpi-bin"
        let mpich = "MPICH (mpiexec.mpich): apt-get install -y mpich"
        switch launcher {
        case .openMPI: return "Install \(openMPI)"
        case .pmi: return "Install \(mpich)"
        case .other: return "Install the MPI of your launcher — \(openMPI); \(mpich) — or name its library in FUSION_MPI_LIBRARY"
        }
    }

    static func load() throws -> MPILibrary {
        // RTLD_GLOBAL: Open MPI's components are plugins that resolve libmpi's symbols.
        var reasons: [String] = []
        for name in candidates {
            if let handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL) {
                let abi: ABI = dlsym(handle, "ompi_mpi_comm_world") != nil ? .openMPI : .mpich
                return MPILibrary(name: name, abi: abi, handle: handle)
            }
            reasons.append(dlerror().map { String(cString: $0) } ?? "\(name): cannot be loaded")
        }
        throw CollectiveError.mpiUnavailable("""
            this process was started by an MPI launcher but no MPI library can be loaded \
            (\(reasons.joined(separator: "; "))). \(installAdvice)
            """)
    }

    func symbol(_ name: String) throws -> UnsafeMutableRawPointer {
        guard let p = dlsym(handle, name) else {
            throw CollectiveError.mpiUnavailable("""
                \(self.name) (\(abi.rawValue)) has no symbol \(name): Fusion needs Open MPI ≥ 4 or an \
                MPICH-ABI library (MPICH ≥ 3.1). \(MPILibrary.installAdvice)
                """)
        }
        return p
    }

    func function<F>(_ name: String, as: F.Type) throws -> F { unsafeBitCast(try symbol(name), to: F.self) }
}
