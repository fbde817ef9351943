"""The identity loss that trains the embedding head (joint detection and embedding).

Every box with a known identity should embed to the same direction wherever its object appears,
and away from every other object. Two terms teach this:

- **Identity classification** (as JDE and FairMOT): a linear classifier over the training
  identities reads the scaled, normalised embedding; cross-entropy teaches it. The classifier is
  a training aid only and never ships with the model. The scale (``sqrt(2) * log(K - 1)`` for K
  identities) lets softmax probabilities reach near one from unit vectors.
- **Supervised contrast within the batch** (Khosla et al., 2020): each embedding is pulled
  toward the other sightings of its object in the batch and pushed from all other boxes. With
  tens of thousands of identities seen a few times each, the classifier alone learns slowly;
  mosaics built from one scene's frames (:class:`~detstream.engines.data.loader.TrainDataset`
  with identities) put several sightings of each object, and its neighbours as hard
  negatives, into every image.
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
        temperature: of the contrastive term.
    """

    def __init__(self, dim: int, num_identities: int, temperature: float = 0.1) -> None:
        super().__init__()
        if num_identities < 2:
            raise ValueError(f"identity training needs at least 2 identities, got "
                             f"{num_identities}")
        self.classifier = nn.Linear(dim, num_identities)
        self.scale = math.sqrt(2.0) * math.log(num_identities - 1) if num_identities > 2 else 1.0
        self.temperature = temperature

    def forward(self, embed: torch.Tensor, identities: torch.Tensor) -> torch.Tensor:
        """Classification plus contrastive loss over the boxes with a known identity.

        Args:
            embed: float [K, D] raw embeddings, one per box.
            identities: int64 [K] their identity indices, ``-1`` unknown (skipped).
        """
        known = identities >= 0
        if not bool(known.any()):
            return embed.sum() * 0.0
        vectors = F.normalize(embed[known].float(), dim=-1)
        labels = identities[known]
        classified = F.cross_entropy(self.classifier(vectors * self.scale), labels)
        return classified + self.contrast(vectors, labels)

    def contrast(self, vectors: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Supervised contrastive loss of unit ``vectors`` [K, D] with identity ``labels`` [K],
        averaged over the vectors that have another sighting in the batch (0 if none has)."""
        k = len(vectors)
        logits = vectors @ vectors.T / self.temperature
        self_pair = torch.eye(k, dtype=torch.bool, device=vectors.device)
        logits = logits.masked_fill(self_pair, float("-inf"))
        positive = (labels[:, None] == labels[None, :]) & ~self_pair
        anchors = positive.any(dim=1)
        if not bool(anchors.any()):
            return vectors.sum() * 0.0
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        pulled = log_prob.masked_fill(~positive, 0.0).sum(dim=1) / positive.sum(dim=1).clamp(min=1)
        return -pulled[anchors].mean()
