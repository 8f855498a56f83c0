// What each model family (Training/ModelFamily.swift) builds: its training task. The one place
// above the family folders that knows them all.
import Training

extension ModelFamily {
    /// The family's training task for `recipe` (whose `model.kind` is this family), writing into `run`.
    public func makeTask(_ recipe: Recipe, run: RunDirectory) throws -> TrainingTask {
        switch self {
        case .lm: return try LMTask(recipe: recipe, run: run)
        case .transfusion: return try TransfusionTask(recipe: recipe, run: run)
        case .chameleon: return try ChameleonTask(recipe: recipe, run: run)
        case .var: return try VARTask(recipe: recipe, run: run)
        case .vae, .vq, .msvq: return try ImageTokenizerTask(recipe: recipe)
        case .classifier: return try ClassifierTask(recipe: recipe)
        case .clip: return try ContrastiveTask(recipe: recipe, run: run)
        }
    }
}
