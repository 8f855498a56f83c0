// A run folder belongs to one resolved recipe. Rerunning `fusion train` on an existing run resumes
// it only when the recipe resolves to the same values as the one the run saved; otherwise it stops
// with the keys that differ (a resumed curve would silently mix two recipes). Also: run names
// templated from recipe values (`--name 'pilot-lr{optimizer.lr}'`).
import Foundation

extension Recipe {
    /// Every resolved key as `section.key` and its value as the saved recipe.yaml writes it, in
    /// schema order; unset optional keys are left out.
    ///
    ///     recipe.flatValues().first { $0.key == "optimizer.lr" }?.value   // "0.002"
    public func flatValues() -> [(key: String, value: String)] {
        RecipeYAML.flat(jsonObject(), keys: RecipeSchema.recipe, prefix: "")
    }

    /// The keys whose values differ from `saved`'s, with both values ("absent" where one recipe
    /// leaves an optional key unset), in schema order.
    public func differences(from saved: Recipe) -> [RecipeDifference] {
        let (mine, theirs) = (flatValues(), saved.flatValues())
        let old = Dictionary(theirs, uniquingKeysWith: { a, _ in a })
        let new = Dictionary(mine, uniquingKeysWith: { a, _ in a })
        let order = (mine + theirs).map(\.key)
        var seen = Set<String>()
        return order.filter { seen.insert($0).inserted }.compactMap { key in
            old[key] == new[key] ? nil : RecipeDifference(key: key, saved: old[key], now: new[key])
        }
    }

    /// `template` with each `{key.path}` replaced by that key's resolved value (`{name}`,
    /// `{optimizer.lr}`, `{model.preset}`); characters a folder name should not hold become `_`.
    ///
    ///     try recipe.expandName("{name}-lr{optimizer.lr}")   // "quickstart-lr0.002"
    public func expandName(_ template: String) throws -> String {
        guard template.contains("{") else { return template }
        let values = Dictionary(flatValues(), uniquingKeysWith: { a, _ in a })
        var out = "", rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else {
                throw RunError.option("--name '\(template)': '{' without a closing '}'")
            }
            let key = String(rest[rest.index(after: open)..<close]).trimmingCharacters(in: .whitespaces)
            guard let value = values[key] else {
                let near = values.keys.filter { $0.hasSuffix("." + key) || key.hasSuffix("." + $0) }.sorted()
                throw RunError.option("--name '\(template)': no recipe key '\(key)'"
                                      + (near.isEmpty ? " (use a key path such as {optimizer.lr} or {model.preset})" : " (did you mean {\(near[0])}?)"))
            }
            out += value.replacingOccurrences(of: "\"", with: "")
            rest = rest[rest.index(after: close)...]
        }
        out += rest
        let safe = String(out.map { $0 == "/" || $0 == " " || $0.asciiValue.map { $0 < 0x20 } == true ? "_" : $0 })
        guard !safe.isEmpty, safe != ".", safe != ".." else { throw RunError.option("--name '\(template)' expands to an unusable folder name '\(safe)'") }
        return safe
    }

    /// The resolved values as JSONSerialization objects, for the YAML writer.
    func jsonObject() -> [String: Any] { recipeValues.mapValues(\.json) }
}

/// One key whose value differs between a run's saved recipe and the one given now.
public struct RecipeDifference: Equatable, CustomStringConvertible, Sendable {
    public var key: String
    public var saved: String?
    public var now: String?

    public var description: String { "\(key): \(saved ?? "absent") → \(now ?? "absent")" }
}

/// Why a run folder's saved recipe stops a rerun.
public struct RecipeChangedError: Error, CustomStringConvertible {
    public var run: String
    public var differences: [RecipeDifference]
    /// Set when the saved recipe.yaml no longer loads (a key this build does not know, say).
    public var unreadable: String?

    public var description: String {
        let what = unreadable.map { "its saved recipe.yaml no longer loads (\($0))" }
            ?? "the recipe differs from the one it was trained with:\n" + differences.map { "    \($0)" }.joined(separator: "\n")
        return "\(run): this run exists and \(what)\n"
            + "  Either train a new run under another name (--name NEW, or a template such as --name '{name}-lr{optimizer.lr}'),\n"
            + "  or continue this run with the new recipe (--resume-anyway; each checkpoint keeps the recipe it was written under)."
    }
}

extension RunDirectory {
    /// Throws `RecipeChangedError` when the run already holds training (a checkpoint) and its saved
    /// recipe.yaml resolves differently from `recipe`. Both sides go through `Recipe.parse`, so keys
    /// added since the run was saved compare at their defaults, not as changes.
    public func checkSameRecipe(_ recipe: Recipe) throws {
        guard !checkpoints().isEmpty, let text = try? String(contentsOf: recipeURL, encoding: .utf8) else { return }
        let saved: Recipe
        do { saved = try Recipe.parse(text, file: recipeURL.path) } catch {
            throw RecipeChangedError(run: url.path, differences: [], unreadable: "\(error)")
        }
        let differences = recipe.differences(from: saved)
        guard differences.isEmpty else { throw RecipeChangedError(run: url.path, differences: differences) }
    }
}
