// A binary min-heap over a Comparable element: the priority queue behind BPE encoding and
// training. Not a general collection: no removal of arbitrary elements (callers pop lazily).

/// A binary min-heap; `pop()` returns the smallest element.
struct MinHeap<Element: Comparable> {
    private(set) var elements: [Element] = []

    init() {}

    init(reservingCapacity n: Int) { elements.reserveCapacity(n) }

    var isEmpty: Bool { elements.isEmpty }
    var count: Int { elements.count }

    mutating func removeAll() { elements.removeAll(keepingCapacity: true) }

    mutating func push(_ x: Element) {
        elements.append(x)
        var i = elements.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !(elements[i] < elements[parent]) { break }
            elements.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard let top = elements.first else { return nil }
        let last = elements.removeLast()
        if elements.isEmpty { return top }
        elements[0] = last
        var i = 0
        let n = elements.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < n && elements[l] < elements[smallest] { smallest = l }
            if r < n && elements[r] < elements[smallest] { smallest = r }
            if smallest == i { break }
            elements.swapAt(i, smallest)
            i = smallest
        }
        return top
    }
}
