"""Classical models: the cheap baseline a practitioner tries first, served like any other.

Images: a linear model on the raw pixels, downsampled to S x S (S = the training images'
median shorter side, at least 4, at most 32 grey or 18 RGB), grey when every training image
is, scaled to [0, 1]. Texts: TF-IDF of word 1-2 grams (scikit-learn), then a linear model.
The head is fitted by the task's own cross-fitted probe, so it is scored like the
frozen-feature probe.

The trainer's side::

    featurizer = classical_candidate(modality, train_set, fit_rows)  # pixel grid / vocabulary
    features = featurizer.features(dataset)        # float32 [len(dataset.examples), D]
    fit = task.probe(features, targets, train_rows, fitted, seed=seed)
    model = featurizer.build_model(num_outputs)    # LinearOnFeatures: get_classifier() head
    install_head(model, fit.weight, fit.bias)
    # artifact: config["library"] = "classical",
    #           config["preprocessing"] = featurizer.preprocessing(),
    #           extra files featurizer.artifact_files() ({relative path: bytes}; TF-IDF terms
    #           and idf weights, none for pixels), written by save_artifact(files=...).

``ClassicalFeaturizer`` has ``kind`` ("pixels" | "tfidf"), ``description`` (for people),
``num_features``, and the four methods above. ``fit_rows`` index the dataset's examples; the
featurizer never sees targets. Serving: ``load_artifact`` builds ``LinearOnFeatures`` and
``load_predictor`` the matching preprocessor (ml/inference/pixels.py, TfidfPreprocessor in
ml/inference/texts.py), which compute training's features from the same code.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ml.classical.candidate import ClassicalFeaturizer, classical_candidate

__all__ = ["ClassicalFeaturizer", "classical_candidate"]


def __getattr__(name: str) -> Any:
    # Imported on first use: serving (ml.artifacts, ml.inference) imports this package's
    # model and TF-IDF modules, and the featurizers import serving's preprocessors back.
    if name in __all__:
        from ml.classical import candidate

        return getattr(candidate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
