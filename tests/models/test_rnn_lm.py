import lightning as L
import pytest
import torch

from seqzoo.data.lm import LanguageModelDataModule
from seqzoo.models.rnn_lm import CELLS, RNNLM, RNNLanguageModel, RNNLMConfig


@pytest.mark.parametrize("cell", CELLS)
def test_shapes_and_state(cell):
    m = RNNLM(RNNLMConfig(vocab_size=30, cell=cell, embedding_size=8, hidden_size=8, num_layers=2))
    ids = torch.randint(0, 30, (3, 5))
    logits, state = m(ids)
    assert logits.shape == (3, 5, 30)
    init = m.init_state(3)
    assert (state[0] if cell == "lstm" else state).shape == (init[0] if cell == "lstm" else init).shape
    # carrying the state over two halves equals one pass over the whole sequence
    a, s = m(ids[:, :2])
    b, _ = m(ids[:, 2:], s)
    assert torch.allclose(torch.cat([a, b], 1), logits, atol=1e-6)


def test_tied_weights_share_storage_and_bad_tie_rejected():
    m = RNNLM(vocab_size=20, embedding_size=8, hidden_size=8, tie_weights=True)
    assert m.decoder.weight is m.embed.weight
    assert len(list(m.parameters())) == len(list(RNNLM(vocab_size=20, embedding_size=8, hidden_size=8).parameters())) - 1
    with pytest.raises(ValueError, match="tie_weights needs embedding_size == hidden_size"):
        RNNLMConfig(vocab_size=20, embedding_size=8, hidden_size=16, tie_weights=True)


def test_bad_config_values():
    with pytest.raises(ValueError, match="unknown cell 'lstmm'; valid: rnn_tanh, rnn_relu, lstm, gru"):
        RNNLMConfig(cell="lstmm")
    with pytest.raises(ValueError, match="dropout"):
        RNNLMConfig(dropout=1.5)


def test_init_range():
    m = RNNLM(vocab_size=50, embedding_size=8, hidden_size=8, init_range=0.1)
    assert all(p.abs().max() <= 0.1 for p in m.parameters())


def _trainer(epochs, **kw):
    return L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, **kw)


def test_tiny_lstm_overfits_tiny_corpus(tiny_corpus):
    """The loss really falls: validation perplexity drops far below its untrained value."""
    L.seed_everything(0)
    dm = LanguageModelDataModule(str(tiny_corpus), batch_size=4, eval_batch_size=2, bptt=8)
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=32, hidden_size=32, num_layers=1,
                             optimizer="adam", lr=0.01)
    before = _trainer(1).validate(model, datamodule=dm, verbose=False)[0]["valid_perplexity"]
    trainer = _trainer(25, gradient_clip_val=1.0)
    trainer.fit(model, datamodule=dm)
    after = trainer.callback_metrics["valid_perplexity"].item()
    train_ppl = trainer.callback_metrics["train_perplexity"].item()
    assert before > 10  # ~uniform over the 13-token vocab (9 words + 4 specials)
    assert after < 4 and train_ppl < 4, (before, after, train_ppl)


def test_test_perplexity_is_token_weighted_over_whole_split(tiny_corpus):
    """Trainer.test's perplexity equals exp(total NLL / tokens) over every token of the split."""
    L.seed_everything(0)
    dm = LanguageModelDataModule(str(tiny_corpus), batch_size=4, eval_batch_size=3, bptt=5)
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=16, hidden_size=16, num_layers=1)
    ppl = _trainer(1).test(model, datamodule=dm, verbose=False)[0]["test_perplexity"]
    ref = model.evaluate_stream(dm.test_dataloader())
    assert ref["tokens"] == dm.num_tokens("test")
    assert ppl == pytest.approx(ref["perplexity"], rel=1e-5)


def test_lr_schedule_zaremba():
    model = RNNLanguageModel(vocab_size=10, embedding_size=4, hidden_size=4, lr=20.0, lr_decay=0.5, decay_start=4)
    opt = model.configure_optimizers()
    sched = opt["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(7):
        lrs.append(sched.optimizer.param_groups[0]["lr"])
        sched.step()
    assert lrs == [20.0, 20.0, 20.0, 20.0, 10.0, 5.0, 2.5]


def test_lr_schedule_plateau_divides_when_valid_does_not_improve(tiny_corpus):
    """pytorch/examples' schedule, run by the Trainer: after each epoch the LR is multiplied by lr_decay
    exactly when that epoch's validation perplexity is not below the best before it."""
    class Record(L.Callback):
        rows = []

        def on_train_epoch_end(self, trainer, pl_module):  # runs after validation, before the LR step
            self.rows.append((trainer.callback_metrics["valid_perplexity"].item(),
                              trainer.optimizers[0].param_groups[0]["lr"]))

    L.seed_everything(0)
    dm = LanguageModelDataModule(str(tiny_corpus), batch_size=4, eval_batch_size=2, bptt=8)
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=16, hidden_size=16, num_layers=1, lr=30.0,
                             lr_decay=0.25, lr_schedule="plateau")
    trainer = _trainer(12, callbacks=[Record()], gradient_clip_val=0.25)
    trainer.fit(model, datamodule=dm)
    rows = Record.rows + [(None, trainer.optimizers[0].param_groups[0]["lr"])]
    best, cuts = float("inf"), 0
    for (ppl, lr), (_, next_lr) in zip(rows, rows[1:]):
        improved = ppl < best
        best = min(best, ppl)
        assert next_lr == pytest.approx(lr if improved else lr * 0.25), (rows, ppl, best)
        cuts += not improved
    assert 0 < cuts < len(Record.rows), rows  # both branches were taken
    with pytest.raises(ValueError, match="unknown lr_schedule 'cosine'; valid: epoch, plateau"):
        RNNLanguageModel(lr_schedule="cosine")
    with pytest.raises(ValueError, match="lr_schedule plateau needs 0 < lr_decay < 1, got 1.0"):
        RNNLanguageModel(lr_schedule="plateau")


def test_nan_loss_stops_with_message(tiny_corpus):
    dm = LanguageModelDataModule(str(tiny_corpus), batch_size=4, bptt=8)
    model = RNNLanguageModel(vocab_size=dm.vocab_size, embedding_size=8, hidden_size=8, num_layers=1)
    with torch.no_grad():
        model.net.decoder.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="training loss is nan at step 0"):
        _trainer(1).fit(model, datamodule=dm)


def test_bad_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer 'sgdd'; valid: sgd, adam, adamw"):
        RNNLanguageModel(optimizer="sgdd")
