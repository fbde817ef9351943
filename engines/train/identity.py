"""The identity loss that trains the embedding head (joint detection and embedding).

Every foreground anchor whose assigned box has a known identity should embed to the same
direction as the rest of that object's anchors, across all images it appears in. As in JDE and
FairMOT, a linear classifier over the training identities reads the scaled, normalised embedding
and cross-entropy teaches it; the classifier is a training aid only and never ships with the
model. The scale (``sqrt(2) * log(K - 1)`` for K identities) lets softmax probabilities reach
near one from unit vectors.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class IdentityLoss(nn.Module):
    """Identity classification on foreground anchors' embeddings.

    Args:
        dim: embedding size.
        num_identities: K, distinct identities in the training data.
    """

    def __init__(self, dim: int, num_identities: int) -> None:
        super().__init__()
        if num_identities < 2:
            raise ValueError(f"identity training needs at least 2 identities, got "
                             f"{num_identities}")
        self.classifier = nn.Linear(dim, num_identities)
        self.scale = math.sqrt(2.0) * math.log(num_identities - 1) if num_identities > 2 else 1.0

    def forward(self, embed: torch.Tensor, identities: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over anchors with a known identity.

        Args:
            embed: float [K, D] raw embeddings of foreground anchors.
            identities: int64 [K] their boxes' identity indices, ``-1`` unknown (skipped).
        """
        known = identities >= 0
        if not bool(known.any()):
            return embed.sum() * 0.0
        vectors = F.normalize(embed[known].float(), dim=-1) * self.scale
        return F.cross_entropy(self.classifier(vectors), identities[known])
