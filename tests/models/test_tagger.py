import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from seqzoo.data.tagging import TaggingDataModule
from seqzoo.models.tagger import (CHAR_ENCODERS, UNK_ID, RecurrentEncoder, RNNTagger, TaggerConfig, TaggerTask,
                                  lengths_to_mask)
from tests.conftest import registered


def _quiet_trainer(**kw):
    return L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, **kw)


def _batch():
    """Two sentences (5 and 3 words) with per-word characters; padding is <pad> = 2 everywhere."""
    ids = torch.tensor([[4, 5, 6, 7, 8], [9, 10, 11, 2, 2]])
    lengths = torch.tensor([5, 3])
    chars = torch.randint(3, 20, (2, 5, 4))
    char_lengths = torch.tensor([[4, 2, 3, 1, 4], [3, 4, 2, 0, 0]])
    chars[lengths_to_mask(char_lengths.flatten(), 4).view(2, 5, 4).logical_not()] = 2
    return ids, lengths, chars, char_lengths


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("char_encoder", CHAR_ENCODERS)
def test_padding_does_not_change_real_positions(cell, char_encoder):
    torch.manual_seed(0)
    m = RNNTagger(vocab_size=30, num_tags=5, cell=cell, embedding_size=8, hidden_size=8, num_layers=2,
                  char_encoder=char_encoder, num_chars=20, char_embedding_size=4, char_hidden_size=6).eval()
    ids, lengths, chars, char_lengths = _batch()
    logits = m(ids, lengths, chars, char_lengths)
    assert logits.shape == (2, 5, 5)
    # the short sentence alone, without the word padding
    alone = m(ids[1:, :3], lengths[1:], chars[1:, :3], char_lengths[1:, :3])
    assert torch.allclose(logits[1, :3], alone[0], atol=1e-5)
    # more char padding and more word padding: real positions unchanged
    wider = torch.cat([chars, torch.full((2, 5, 3), 2)], -1)
    longer_ids = torch.cat([ids, torch.full((2, 2), 2)], 1)
    longer_chars = torch.cat([wider, torch.full((2, 2, 7), 2)], 1)
    longer_cl = torch.cat([char_lengths, torch.zeros(2, 2, dtype=torch.long)], 1)
    again = m(longer_ids, lengths, longer_chars, longer_cl)
    assert torch.allclose(again[:, :5][lengths_to_mask(lengths, 5)], logits[lengths_to_mask(lengths, 5)], atol=1e-5)


def test_recurrent_encoder_zero_at_padding_and_last_states():
    torch.manual_seed(0)
    enc = RecurrentEncoder(3, 4, num_layers=1, cell="lstm", bidirectional=True)
    x = torch.randn(2, 5, 3)
    out, h = enc(x, torch.tensor([5, 2]))
    assert out.shape == (2, 5, 8) and h.shape == (2, 2, 4)
    assert out[1, 2:].abs().sum() == 0
    assert torch.allclose(h[0, 1], out[1, 1, :4]) and torch.allclose(h[1, 1], out[1, 0, 4:])
    with pytest.raises(ValueError, match="length >= 1"):
        enc(x, torch.tensor([5, 0]))


def test_pretrained_embeddings_and_word_dropout():
    vecs = torch.randn(30, 8)
    m = RNNTagger(TaggerConfig(vocab_size=30, num_tags=3, embedding_size=8, hidden_size=4), embeddings=vecs)
    assert torch.equal(m.embed.weight.data, vecs)
    with pytest.raises(ValueError, match=r"pretrained embeddings have shape \(30, 9\), the model needs"):
        RNNTagger(TaggerConfig(vocab_size=30, num_tags=3, embedding_size=8, hidden_size=4),
                  embeddings=torch.randn(30, 9))
    task = TaggerTask(vocab_size=30, num_tags=3, embedding_size=8, hidden_size=4, embeddings=vecs)
    assert "embeddings" not in task.hparams and torch.equal(task.net.embed.weight.data, vecs)
    # word dropout only in training: eval outputs are deterministic; in training, words become <unk>, padding not
    m = RNNTagger(vocab_size=30, num_tags=3, embedding_size=8, hidden_size=4, word_dropout=0.5).eval()
    ids = torch.randint(4, 30, (2, 6))
    assert torch.equal(m(ids), m(ids))
    m = RNNTagger(vocab_size=30, num_tags=3, embedding_size=8, hidden_size=4, word_dropout=1.0 - 1e-9).train()
    lengths = torch.tensor([6, 4])
    all_unk = ids.masked_fill(torch.arange(6) < lengths.view(2, 1), UNK_ID)   # padding positions keep their ids
    trained_view = m(ids, lengths)
    assert torch.equal(trained_view, m(all_unk, lengths))
    assert not torch.equal(trained_view, m.eval()(ids, lengths))


def test_bad_config_values():
    with pytest.raises(ValueError, match="unknown cell 'rnn'; valid: lstm, gru"):
        TaggerConfig(cell="rnn")
    with pytest.raises(ValueError, match="unknown char_encoder 'gru'; valid: none, lstm, cnn"):
        TaggerConfig(char_encoder="gru")
    with pytest.raises(ValueError, match="needs num_chars"):
        TaggerConfig(char_encoder="cnn", num_chars=0)
    with pytest.raises(ValueError, match="word_dropout must be in"):
        TaggerConfig(word_dropout=1.0)
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'; valid: adam, adamw, sgd"):
        TaggerTask(optimizer="adagrad")
    with pytest.raises(ValueError, match="this tagger has character features"):
        RNNTagger(vocab_size=10, num_tags=2, char_encoder="lstm", num_chars=10)(torch.tensor([[4, 5]]))


class _FixedLogits(nn.Module):
    """Predicts the tag given in the first column of the input ids (so predictions are known)."""

    def __init__(self, num_tags):
        super().__init__()
        self.num_tags, self.w = num_tags, nn.Parameter(torch.zeros(1))

    def forward(self, ids, lengths=None, chars=None, char_lengths=None):
        return torch.nn.functional.one_hot(ids % self.num_tags, self.num_tags).float() + self.w


def test_accuracy_is_micro_over_the_split_and_ignores_padding():
    task = TaggerTask(vocab_size=10, num_tags=3, embedding_size=4, hidden_size=4)
    task.net = _FixedLogits(3)
    # batch 1: 4 real tokens, 3 right; padding predicts 2 but is ignored. batch 2: 1 token, wrong.
    b1 = {"input_ids": torch.tensor([[0, 1, 2], [2, 5, 5]]), "lengths": torch.tensor([3, 1]),
          "tags": torch.tensor([[0, 1, 0], [2, -100, -100]])}
    b2 = {"input_ids": torch.tensor([[1]]), "lengths": torch.tensor([1]), "tags": torch.tensor([[0]])}
    out = _quiet_trainer().validate(task, dataloaders=DataLoader([b1, b2], batch_size=None), verbose=False)[0]
    assert out["valid_accuracy"] == pytest.approx(3 / 5)  # not the mean of batch accuracies (0.75 + 0) / 2
    out = _quiet_trainer().test(task, dataloaders=DataLoader([b1], batch_size=None), verbose=False)[0]
    assert out["test_accuracy"] == pytest.approx(3 / 4)


TRAIN = [("the cat sat", "DET NOUN VERB"), ("a dog ran", "DET NOUN VERB"), ("dogs run fast", "NOUN VERB ADV"),
         ("the dog sat down", "DET NOUN VERB ADV"), ("cats sat", "NOUN VERB"), ("run", "VERB"),
         ("the run", "DET NOUN"), ("a cat ran fast", "DET NOUN VERB ADV")]


def _conllu(rows):
    out = []
    for words, tags in rows:
        pairs = zip(words.split(), tags.split())
        out += [f"{i}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_" for i, (w, t) in enumerate(pairs, 1)]
        out.append("")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("char_encoder", ["lstm", "cnn"])
def test_tiny_tagger_overfits(tmp_path, char_encoder):
    """Loss really falls and train-set accuracy reaches 1 (``run`` is VERB or NOUN by context)."""
    L.seed_everything(0)
    for split in ("train", "dev", "test"):
        (tmp_path / f"xx_tiny-ud-{split}.conllu").write_text(_conllu(TRAIN))
    dm = TaggingDataModule(str(tmp_path), batch_size=4, eval_batch_size=8)
    model = TaggerTask(vocab_size=dm.vocab_size, num_tags=dm.num_tags, num_chars=dm.num_chars, embedding_size=16,
                       hidden_size=16, num_layers=1, char_encoder=char_encoder, char_hidden_size=8, lr=0.02)
    before = _quiet_trainer().validate(model, datamodule=dm, verbose=False)[0]
    trainer = _quiet_trainer(max_epochs=40, check_val_every_n_epoch=40)
    trainer.fit(model, datamodule=dm)
    after = trainer.callback_metrics
    assert before["valid_accuracy"] < 0.6 and after["valid_loss"] < before["valid_loss"] / 5, (before, after)
    assert after["valid_accuracy"] == 1.0 and after["train_accuracy"] > 0.9


@pytest.mark.parametrize("name", registered("tagger"))
def test_registered_variants_forward_backward(name):
    from seqzoo.registry import create_model
    m = create_model(name, vocab_size=40, num_tags=5, num_chars=20, embedding_size=8, hidden_size=8,
                     char_hidden_size=4)
    ids, lengths, chars, char_lengths = _batch()
    logits = m(ids, lengths, chars, char_lengths)
    assert logits.shape == (2, 5, 5)
    logits.logsumexp(-1).mean().backward()
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("char_encoder", CHAR_ENCODERS)
def test_forward_under_bf16_autocast(char_encoder):
    """Trainer(precision="bf16-mixed"): the char encoder's features come out in bf16, the word embeddings in fp32."""
    m = RNNTagger(vocab_size=40, num_tags=5, num_chars=20, embedding_size=8, hidden_size=8, char_hidden_size=4,
                  char_encoder=char_encoder)
    ids, lengths, chars, char_lengths = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = m(ids, lengths, chars, char_lengths)
    assert logits.shape == (2, 5, 5) and torch.isfinite(logits.float()).all()
