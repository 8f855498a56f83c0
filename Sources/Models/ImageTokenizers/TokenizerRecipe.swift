// The model configs a recipe's `tokenizer:` section (Training/RecipeTokenizer.swift) describes.
import Training

extension TokenizerSection {
    /// The ImageVAE this section describes for images of `imageChannels` channels (latent scale 1
    /// until calibrated).
    public func vaeConfig(imageChannels: Int = 3) -> ImageVAE.Config {
        ImageVAE.Config(channels: channels, channelMultipliers: channelMultipliers, patchSize: patchSize,
                        latentChannels: latentChannels, downsample: downsample, groups: groups, klWeight: klWeight,
                        reconstruction: reconstruction, imageChannels: imageChannels)
    }

    /// The VQTokenizer this section describes.
    public func vqConfig(imageChannels: Int = 3) -> VQTokenizer.Config {
        VQTokenizer.Config(channels: channels, channelMultipliers: channelMultipliers, patchSize: patchSize,
                           downsample: downsample, groups: groups, codebookSize: codebookSize, codeDim: codeDim,
                           commitmentWeight: commitmentWeight, ema: ema, emaDecay: emaDecay,
                           restartAfterSteps: restartAfterSteps, reconstruction: reconstruction,
                           imageChannels: imageChannels)
    }
}
