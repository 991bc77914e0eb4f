"""The one_class kNN: one chunked matrix product gives cdist's distances, and its float16 form
(CUDA's default) keeps the ranking of frame scores."""

from __future__ import annotations

import pytest
import torch

from vigil_shared.vision import one_class_model
from vigil_shared.vision.one_class_model import knn_distance


def features(n: int, *, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn((n, 64), generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("k", [1, 3])
def test_the_matrix_product_gives_cdists_distances_in_any_chunking(
    k: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, queries = features(300, seed=0), features(1000, seed=1, scale=1.3)
    expected = torch.cdist(queries, bank).topk(k, dim=1, largest=False).values.mean(dim=1)
    torch.testing.assert_close(knn_distance(queries, bank, k), expected, rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(one_class_model, "_QUERY_CHUNK", 7)
    torch.testing.assert_close(knn_distance(queries, bank, k), expected, rtol=1e-4, atol=1e-4)
    assert knn_distance(queries[:0], bank, k).shape == (0,)


def test_float16_products_keep_the_ranking_of_frame_scores() -> None:
    """Whitened patch features (unit variance per direction, 64 of them), a bank of 2048 normal
    patches, and 120 frames of 196 patches, a few of them far from normal as anomalies are: the
    frame score (its worst patch) ranks the frames the same in float16 as in float32."""
    bank = features(2048, seed=2)
    frames = features(120 * 196, seed=3).view(120, 196, 64)
    strength = torch.linspace(0.0, 3.0, 120)
    frames[:, 0] += strength.view(-1, 1) * features(1, seed=4)  # an anomaly of growing size
    queries = frames.reshape(-1, 64)
    exact = knn_distance(queries, bank, 1).view(120, 196).amax(dim=1)
    half = knn_distance(queries, bank, 1, half=True).view(120, 196).amax(dim=1)
    assert float((half - exact).abs().max()) < 0.02 * float(exact.mean())
    ranks = exact.argsort().argsort().float(), half.argsort().argsort().float()
    spearman = torch.corrcoef(torch.stack(ranks))[0, 1]
    assert float(spearman) > 0.999
    top = set(exact.topk(20).indices.tolist())
    assert len(top & set(half.topk(20).indices.tolist())) >= 19
