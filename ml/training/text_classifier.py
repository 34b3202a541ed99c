"""The text classifier Hone trains and serves: a transformers encoder, the mean of its token
states over the attention mask, and one linear layer.

Why not AutoModelForSequenceClassification: BERT-style heads classify the pooler's transform of
the [CLS] token, and on frozen features that loses badly to mean pooling. Measured here with
MiniLM-L6 on 900 tweets (3 classes, linear probe): macro-F1 0.715 on the pooler output vs 0.876
on mean-pooled states, the latter also beating a full fine-tune of the pooler model (0.842).
Sentence-embedding backbones (all-MiniLM-L6-v2) are trained for exactly this pooling.

The pooled features are the means of the last POOLED_LAYERS layers' states, side by side (the
feature-based use of BERT's last four layers, Devlin et al. 2019, section 5.3). On the
benchmark's tweets, a cross-validated logistic regression on MiniLM-L6's last four layers
scored 0.673 test accuracy against 0.652 on the last layer alone (bench/RESULTS.md).

A head may also read the TF-IDF rows of the same texts beside the pooled states
(``extra_features`` columns, the ``features`` input): `auto`'s probe with TF-IDF
(ml/training/blend.py), one linear layer whose logits are the probe's and the TF-IDF model's
blended.

The module is called like a transformers classifier (token tensors by name in, an output with
`.logits` out) and keeps the encoder's `config` (labels included), so the serving and ONNX
code treat it like one.
"""

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

POOLING = "mean"
# How many of the encoder's last layers are mean-pooled and concatenated; an artifact without
# "layers" in its backbone block pooled the last one only.
POOLED_LAYERS = 4


class MeanPooledClassifier(torch.nn.Module):
    def __init__(
        self,
        encoder: PreTrainedModel,
        num_labels: int,
        layers: int = 1,
        extra_features: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        config = encoder.config
        # Never more layers than the encoder has (its hidden states also hold the embeddings).
        self.layers = max(1, min(layers, int(getattr(config, "num_hidden_layers", layers))))
        dropout = getattr(config, "hidden_dropout_prob", None) or 0.1
        self.dropout = torch.nn.Dropout(dropout)
        self.extra_features = extra_features
        width = config.hidden_size * self.layers + extra_features
        self.classifier = torch.nn.Linear(width, num_labels)

    @property
    def config(self) -> PretrainedConfig:
        config: PretrainedConfig = self.encoder.config
        return config

    def head_config(self) -> dict[str, str | int]:
        """What the head reads, for the artifact's backbone block (load_artifact reads it; the
        TF-IDF columns are described by the preprocessing block, which computes them)."""
        return {"pooling": POOLING, "layers": self.layers}

    def get_classifier(self) -> torch.nn.Linear:
        """timm's name for the output layer; the linear probe trains this one."""
        return self.classifier

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        output = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=self.layers > 1,
            **extra,
        )
        layers = (
            output.hidden_states[-self.layers :] if self.layers > 1 else [output.last_hidden_state]
        )
        mask = attention_mask.unsqueeze(-1).to(layers[-1].dtype)
        count = mask.sum(dim=1).clamp_min(1.0)
        pooled = torch.cat([(states * mask).sum(dim=1) / count for states in layers], dim=-1)
        pooled = self.dropout(pooled)
        if self.extra_features:
            if features is None or features.shape[-1] != self.extra_features:
                raise ValueError(f"this head also reads {self.extra_features} TF-IDF features")
            pooled = torch.cat([pooled, features.to(pooled.dtype)], dim=-1)
        return SequenceClassifierOutput(logits=self.classifier(pooled))
