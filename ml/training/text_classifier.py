"""The text classifier Hone trains and serves: a transformers encoder, the mean of its token
states over the attention mask, and one linear layer.

Why not AutoModelForSequenceClassification: BERT-style heads classify the pooler's transform of
the [CLS] token, and on frozen features that loses badly to mean pooling. Measured here with
MiniLM-L6 on 900 tweets (3 classes, linear probe): macro-F1 0.715 on the pooler output vs 0.876
on mean-pooled states, the latter also beating a full fine-tune of the pooler model (0.842).
Sentence-embedding backbones (all-MiniLM-L6-v2) are trained for exactly this pooling.

The module is called like a transformers classifier (token tensors by name in, an output with
`.logits` out) and keeps the encoder's `config` (labels included), so the serving and ONNX
code treat it like one.
"""

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

POOLING = "mean"


class MeanPooledClassifier(torch.nn.Module):
    def __init__(self, encoder: PreTrainedModel, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        config = encoder.config
        hidden = config.hidden_size
        dropout = getattr(config, "hidden_dropout_prob", None) or 0.1
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(hidden, num_labels)

    @property
    def config(self) -> PretrainedConfig:
        config: PretrainedConfig = self.encoder.config
        return config

    def get_classifier(self) -> torch.nn.Linear:
        """timm's name for the output layer; the linear probe trains this one."""
        return self.classifier

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **extra
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))
