// Reverse-mode autodiff: each recorded op keeps its inputs and a backward closure; `backward()`
// visits the recorded ops once, newest first. Not higher-order: backward itself is not recorded.
import Foundation
import Synchronization

/// One recorded op: its differentiable inputs and the rule mapping the output gradient to theirs.
final class GradNode {
    private static let counter = Atomic<Int>(0)
    let id: Int
    let inputs: [Tensor]
    let backward: (Tensor) -> [Tensor?]

    init(inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.id = GradNode.counter.add(1, ordering: .relaxed).newValue
        self.inputs = inputs
        self.backward = backward
    }
}

/// Grad mode. Task-local, so concurrent tasks (tests, a sampler beside a trainer) each have
/// their own; worker threads of our parallel loops never record ops.
public enum Autograd {
    @TaskLocal static var disabled = false
    public static var isEnabled: Bool { !disabled }
}

/// Runs `body` without recording ops (sampling, evaluation, optimizer updates).
@inline(__always)
public func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
    try Autograd.$disabled.withValue(true) { try body() }
}

extension Tensor {
    /// Records this freshly computed tensor as the output of an op over `inputs`, when grad mode
    /// is on and any input tracks gradients. `backward` returns one gradient per input (nil for
    /// inputs that need none). It must not capture `self` (use `detached()`), or the graph leaks.
    @discardableResult @inline(__always)
    public func recorded(_ inputs: [Tensor], _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard Autograd.isEnabled, inputs.contains(where: { $0.tracksGrad }) else { return self }
        node = GradNode(inputs: inputs, backward: backward)
        return self
    }

    /// Back-propagates from this tensor. A scalar seeds with 1; otherwise pass `gradient`.
    /// Leaves with `requiresGrad` accumulate into `grad` (add, never overwrite).
    ///
    /// `onLeafReady`, when given, is called once for each leaf with `requiresGrad` that this
    /// graph reaches, as soon as the last op using it has run backward: from then on its `grad`
    /// holds everything this call adds. Data-parallel training starts reducing those gradients
    /// while backward goes on.
    ///
    /// ```swift
    /// loss.backward { p in reducer.gradientReady(p) }
    /// ```
    public func backward(_ gradient: Tensor? = nil, onLeafReady: ((Tensor) -> Void)? = nil) {
        guard let root = node else {
            precondition(requiresGrad, "backward: tensor does not require grad")
            accumulateLeaf(self, gradient ?? Tensor.ones(shape))
            onLeafReady?(self)
            return
        }
        let seed = gradient ?? {
            precondition(count == 1, "backward: non-scalar tensor of shape \(shape) needs a gradient")
            return Tensor.ones(shape)
        }()
        precondition(seed.shape == shape, "backward: gradient shape \(seed.shape) != \(shape)")

        // The tape: every recorded op reachable from the root, newest first.
        var order: [GradNode] = []
        var seen = Set<ObjectIdentifier>([ObjectIdentifier(root)])
        var stack = [root]
        while let n = stack.popLast() {
            order.append(n)
            for input in n.inputs {
                if let m = input.node, seen.insert(ObjectIdentifier(m)).inserted { stack.append(m) }
            }
        }
        order.sort { $0.id > $1.id }

        // With a readiness hook: how many recorded ops still have to run backward per leaf.
        var uses: [ObjectIdentifier: Int] = [:]
        if onLeafReady != nil {
            for n in order { for input in n.inputs where input.node == nil && input.requiresGrad { uses[ObjectIdentifier(input), default: 0] += 1 } }
        }
        func visited(_ n: GradNode) {
            guard let onLeafReady else { return }
            for input in n.inputs where input.node == nil && input.requiresGrad {
                let key = ObjectIdentifier(input)
                let left = uses[key]! - 1
                uses[key] = left
                if left == 0 { onLeafReady(input) }
            }
        }

        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
        withoutGrad {
            for n in order {
                defer { visited(n) }
                guard let g = pending.removeValue(forKey: ObjectIdentifier(n)) else { continue }
                let grads = n.backward(g)
                precondition(grads.count == n.inputs.count, "backward: rule returned \(grads.count) grads for \(n.inputs.count) inputs")
                for (input, gi) in zip(n.inputs, grads) {
                    guard let gi else { continue }
                    precondition(gi.shape == input.shape,
                                 "backward: gradient shape \(gi.shape) for input of shape \(input.shape)")
                    if let m = input.node {
                        let key = ObjectIdentifier(m)
                        if let prev = pending[key] { pending[key] = prev + gi } else { pending[key] = gi }
                    } else if input.requiresGrad {
                        accumulateLeaf(input, gi)
                    }
                }
            }
        }
    }

    /// Clears this leaf's gradient.
    public func zeroGrad() { grad = nil }
}

/// Adds `g` into a leaf's gradient; the first gradient is copied so later in-place updates of
/// `grad` (clipping, accumulation) never write into a buffer shared with another tensor.
private func accumulateLeaf(_ leaf: Tensor, _ g: Tensor) {
    if let existing = leaf.grad {
        existing.addInPlace(g)
    } else {
        leaf.grad = g.copy()
    }
}
