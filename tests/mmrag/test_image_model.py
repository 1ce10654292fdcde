"""The offline image-text model: loads through open_clip from packaged weights, and ranks sensibly."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
CAPTIONS = {"drums.png": "a drum kit", "bulldog-puppy.png": "a bulldog puppy", "orange-slice.png": "a slice of orange"}


def test_registered_with_open_clip_and_loaded_from_a_local_checkpoint(image_embedder):
    import open_clip

    from mmrag.embedding import bridge

    assert "mmrag-bridge" in open_clip.list_models()
    assert image_embedder.dim == bridge.EMBED_DIM == 1000 + 384 + 2 * 256 and image_embedder.name.endswith(".pt")


def test_matching_captions_rank_first_both_ways(image_embedder):
    images = [Image.open(IMAGES / name) for name in CAPTIONS]
    iv = image_embedder.embed_images(images)
    tv = image_embedder.embed_texts(list(CAPTIONS.values()))
    np.testing.assert_allclose(np.linalg.norm(iv, axis=1), 1, rtol=1e-4)
    sim = tv @ iv.T
    assert list(sim.argmax(1)) == [0, 1, 2]  # each caption finds its drawing
    assert list(sim.argmax(0)) == [0, 1, 2]  # each drawing finds its caption


def test_text_side_is_a_concept_distribution_and_minilm_and_borrowed_pictures(image_embedder, minilm_embedder):
    """A text's vector has three weighted parts: the square root of a distribution over the 1000
    ImageNet concepts at the fixed entropy (from its MiniLM cosines to the concept texts), its MiniLM
    embedding itself, and the mean picture of the memory drawings whose captions are nearest."""
    import timm.data
    import torch

    from mmrag.embedding import bridge
    from mmrag.embedding import caption_memory as memory

    texts = ["a slice of orange", "Where is the harbour lighthouse?"]
    vecs = image_embedder.embed_texts(texts)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1, rtol=1e-4)
    w_concepts = 1 - memory.W_CAPTION - memory.W_PICTURE
    probs = vecs[:, :1000] ** 2 / w_concepts
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    entropy = -(probs * np.log(np.clip(probs, 1e-30, None))).sum(1)
    np.testing.assert_allclose(entropy, bridge.TEXT_ENTROPY, atol=0.01)
    minilm = minilm_embedder.embed(texts)
    head = image_embedder.model.visual.trunk.classifier
    cosines = torch.from_numpy(minilm) @ head.concepts.T
    expected = bridge.softmax_at_entropy(cosines, torch.tensor(bridge.TEXT_ENTROPY)).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    np.testing.assert_allclose(vecs[:, 1000:1384], memory.W_CAPTION ** 0.5 * minilm, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(vecs[:, 1384:], axis=1), memory.W_PICTURE ** 0.5, rtol=1e-4)
    info = timm.data.ImageNetInfo("imagenet-1k")
    top5 = [" / ".join(info.index_to_description(int(i)) for i in np.argsort(-row)[:5]) for row in probs]
    assert "orange" in top5[0] and "lighthouse" in top5[1], top5


def test_the_memory_part_is_gated_by_the_nearest_memory_picture(image_embedder):
    """The memory's gate: an image leans on the memory only as far as its nearest memory picture is close.
    A drawing near memory drawings uses it fully; a picture unlike them (here: smooth coloured noise, its
    nearest memory picture at cosine ~0.25) only a little; below GATE_LOW, not at all."""
    import torch

    from mmrag.embedding import caption_memory as memory
    from mmrag.embedding.image import pad_to_square, to_rgb

    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).resize((224, 224), Image.BICUBIC)
    drawing = Image.open(IMAGES / "orange-slice.png")
    vecs = image_embedder.embed_images([noise, drawing])
    tower = image_embedder.model.visual.trunk
    x = torch.stack([image_embedder.preprocess(pad_to_square(to_rgb(im))) for im in (noise, drawing)])
    with torch.no_grad():
        best = (tower.classifier.pictures(tower.pooled(x)) @ tower.classifier.memory_pictures.T).max(dim=1).values
    g = memory.gate(best).numpy()
    assert g[0] < 0.5 and g[1] == 1.0, (best, g)
    memory_part = np.linalg.norm(vecs[:, 1000:], axis=1)
    np.testing.assert_allclose(memory_part, np.sqrt(g * (memory.W_CAPTION + memory.W_PICTURE)), rtol=1e-3)
    assert memory.gate(torch.tensor([memory.GATE_LOW - 0.01])).item() == 0.0


def test_transparent_background_is_white_not_black(image_embedder):
    from mmrag.embedding.image import to_rgb

    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert to_rgb(rgba).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.slow
def test_caption_less_images_with_neutral_names_are_found_by_text(ingestor, tmp_path, text_embedder, image_embedder, settings):
    from app.retrieval import Filters, HybridRetriever

    folder = tmp_path / "photos"
    folder.mkdir()
    for k, name in enumerate(CAPTIONS):
        shutil.copy(IMAGES / name, folder / f"IMG_{k:04d}.png")
    ingestor.ingest_paths([folder], "photos", progress=False)
    retriever = HybridRetriever(ingestor.store, settings, text_embedder, image_embedder)
    for k, caption in enumerate(CAPTIONS.values()):
        hits = retriever.retrieve(caption, "photos", 3, Filters(types=["image"])).hits
        doc = ingestor.store.document(hits[0].unit.document_id)
        assert doc.file_name == f"IMG_{k:04d}.png", caption


def test_memory_size_comes_from_the_header_alone():
    from mmrag.embedding import caption_memory as memory

    assert memory.size() == len(memory.load()["texts"]) > 1000


def test_an_images_picture_part_is_both_trunks_projected_as_the_memory_file_says(image_embedder):
    """The tower's Lite0 and Lite2 features, projected with the PCA stored in the memory file and weighted
    by the mix, are the picture part of the image's vector: the model and the memory it searches agree."""
    import torch

    from mmrag.embedding import caption_memory as memory
    from mmrag.embedding.image import pad_to_square, to_rgb

    drawing = Image.open(IMAGES / "orange-slice.png")  # near the memory: its picture part is on (see the gate test)
    vec = image_embedder.embed_images([drawing])[0]
    x = image_embedder.preprocess(pad_to_square(to_rgb(drawing)))[None]
    with torch.no_grad():
        pooled = {k: v.numpy() for k, v in image_embedder.model.visual.trunk.pooled(x).items()}
    assert set(pooled) == {"lite0", "lite2"}
    mem, w = memory.load(), memory.space_weights()
    expected = np.concatenate([w[s] * memory.project(pooled[s], mem[f"{s}_mean"], mem[f"{s}_axes"]) for s in memory.SPACES], axis=1)[0]
    part = vec[1384:]
    assert np.linalg.norm(part) > 0.3
    np.testing.assert_allclose(part / np.linalg.norm(part), expected / np.linalg.norm(expected), atol=1e-3)


def test_int8_memory_features_keep_cosines():
    from mmrag.embedding import caption_memory as memory

    x = np.random.default_rng(0).normal(size=(200, 256)).astype(np.float32)
    q, scale = memory.quantise(x)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    back = q.astype(np.float32) * scale[:, None]
    cos = (back * x).sum(1) / np.linalg.norm(back, axis=1) / np.linalg.norm(x, axis=1)
    assert cos.min() > 0.999
