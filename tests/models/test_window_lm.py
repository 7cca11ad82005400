import lightning as L
import pytest
import torch

from seqzoo.data.lm import LanguageModelDataModule
from seqzoo.models.window_lm import START_ID, WindowLanguageModel, WindowLM, WindowLMConfig, window_lm_5gram


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("context_size", [1, 3])
def test_shapes_and_state(direct, context_size):
    m = WindowLM(vocab_size=30, context_size=context_size, embedding_size=4, hidden_size=6, direct=direct)
    assert (m.direct is not None) == direct
    ids = torch.randint(0, 30, (3, 7))
    logits, state = m(ids)
    assert logits.shape == (3, 7, 30)
    assert state.shape == m.init_state(3).shape == (context_size - 1, 3)
    assert torch.equal(state, ids[:, 7 - (context_size - 1):].t())  # the last n-2 tokens read


@pytest.mark.parametrize("direct", [True, False])
def test_context_crosses_batch_boundaries(direct):
    """Two batches with the state carried give the logits of one pass over the whole sequence,
    also when a batch is shorter than the context."""
    torch.manual_seed(0)
    m = WindowLM(vocab_size=25, context_size=4, embedding_size=5, hidden_size=7, direct=direct)
    ids = torch.randint(4, 25, (2, 11))
    full, _ = m(ids)
    a, s = m(ids[:, :5])
    b, s = m(ids[:, 5:6], s)  # one step: the context spans three batches
    c, _ = m(ids[:, 6:], s)
    torch.testing.assert_close(torch.cat([a, b, c], 1), full)
    # without the carried state the first steps of the second half see <eos> padding instead: different
    assert not torch.allclose(m(ids[:, 5:])[0][:, 0], full[:, 5])


def test_window_is_the_previous_words_padded_with_eos():
    """Position t is predicted from (w_{t-3}, .., w_t); before the start the context is <eos>."""
    torch.manual_seed(0)
    m = WindowLM(vocab_size=20, context_size=4, embedding_size=3, hidden_size=5, direct=True)
    ids = torch.tensor([[7, 8, 9, 10, 11]])
    logits, _ = m(ids)

    def by_hand(window):
        x = m.embed(torch.tensor(window)).flatten()
        return m.decoder(torch.tanh(m.hidden(x))) + m.direct(x)

    torch.testing.assert_close(logits[0, 0], by_hand([START_ID] * 3 + [7]))
    torch.testing.assert_close(logits[0, 2], by_hand([START_ID, 7, 8, 9]))
    torch.testing.assert_close(logits[0, 4], by_hand([8, 9, 10, 11]))


def test_bad_config_and_state():
    with pytest.raises(ValueError, match="context_size must be >= 1, got 0"):
        WindowLMConfig(context_size=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        WindowLMConfig(dropout=1.0)
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="init_range must be a finite number >= 0"):
            WindowLMConfig(init_range=bad)
    m = WindowLM(vocab_size=10, context_size=3, embedding_size=2, hidden_size=2)
    with pytest.raises(ValueError, match=r"state must be \(2, 4\) previous tokens, got \(3, 4\)"):
        m(torch.zeros(4, 5, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long))


def test_registered_variant_sizes():
    m = window_lm_5gram(vocab_size=50)
    assert (m.config.context_size, m.config.embedding_size, m.config.hidden_size, m.config.direct) == (4, 60, 50, True)


def test_init_range():
    """init_range r draws every weight from uniform(-r, r); 0 keeps PyTorch's N(0, 1) embeddings."""
    torch.manual_seed(0)
    m = WindowLM(vocab_size=200, embedding_size=8, hidden_size=8, init_range=0.1)
    assert all(0.05 < p.abs().max() <= 0.1 for p in m.parameters())
    assert WindowLM(vocab_size=200, embedding_size=8, hidden_size=8).embed.weight.abs().max() > 1


def _trainer(epochs, **kw):
    return L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, **kw)


@pytest.mark.parametrize("direct", [True, False])
def test_tiny_window_lm_overfits_tiny_corpus(tiny_corpus, direct):
    """Plugged into LanguageModelTask and the stream batches, the loss really falls."""
    L.seed_everything(0)
    dm = LanguageModelDataModule(str(tiny_corpus), batch_size=4, eval_batch_size=2, bptt=8)
    model = WindowLanguageModel(vocab_size=dm.vocab_size, context_size=3, embedding_size=16, hidden_size=32,
                                direct=direct, optimizer="adam", lr=0.01)
    before = _trainer(1).validate(model, datamodule=dm, verbose=False)[0]["valid_perplexity"]
    trainer = _trainer(20)
    trainer.fit(model, datamodule=dm)
    after = trainer.callback_metrics["valid_perplexity"].item()
    train_ppl = trainer.callback_metrics["train_perplexity"].item()
    assert before > 10  # ~uniform over the 13-token vocab
    assert after < 4 and train_ppl < 4, (before, after, train_ppl)
    # the Trainer's token-weighted test perplexity equals a pass over the whole split with the state carried
    ppl = _trainer(1).test(model, datamodule=dm, verbose=False)[0]["test_perplexity"]
    assert ppl == pytest.approx(model.evaluate_stream(dm.test_dataloader())["perplexity"], rel=1e-5)
