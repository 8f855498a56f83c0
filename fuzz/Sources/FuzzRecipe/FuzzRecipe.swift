// libFuzzer harness for recipe validation: YAML text (and, after a NUL byte, one override per line)
// must parse or throw a RecipeError; a recipe that parses must read back from its own YAML.
import Foundation
import Training

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parts = text.split(separator: "\0", maxSplits: 1, omittingEmptySubsequences: false)
    let overrides = parts.count > 1 ? parts[1].split(separator: "\n").map(String.init) : []
    guard let recipe = try? Recipe.parse(String(parts[0]), file: "fuzz.yaml", overrides: overrides) else { return 0 }
    do {
        let again = try Recipe.parse(recipe.yaml(), file: "fuzz-resolved.yaml")
        precondition(again == recipe, "a resolved recipe must read back equal")
    } catch {
        fatalError("a resolved recipe does not read back: \(error)")
    }
    return 0
}
