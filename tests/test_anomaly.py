"""Anomaly mode (``ad.autograd.detect_anomaly``): torch's errors, warnings and state handling.

Checked against torch 2.13 in side scripts: the messages, the warning before the error, the index of the
output, the process-wide state, and ``detect_anomaly`` capturing the state to restore when constructed.
"""

import inspect
import threading
import warnings

import numpy as np
import pytest

import ad

ENABLED = "Anomaly Detection has been enabled"
pytestmark = [
    pytest.mark.filterwarnings(f"ignore:{ENABLED}:UserWarning"),
    pytest.mark.filterwarnings("ignore:Error detected in:UserWarning"),  # checked through _caught
]


@pytest.fixture(autouse=True)
def _mode_off_after():
    yield
    ad.set_anomaly_enabled(False)  # the mode is process-wide: a failing test must not leak it


def _line():
    """The line number of the caller's current line."""
    return inspect.currentframe().f_back.f_lineno


def _sqrt_at_zero():
    """Finite forward, NaN only in backward: d sqrt(x) at 0 is inf, times the incoming 0."""
    x = ad.tensor([0.0, 1.0], requires_grad=True)
    return x, (x.sqrt() * 0.0).sum()


def _caught(fn):
    """Run ``fn``; return (the exception it raised or None, the UserWarning messages it emitted, in order)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            fn()
            err = None
        except Exception as e:  # noqa: BLE001 - the caller checks what came
            err = e
    return err, [str(w.message) for w in seen if w.category is UserWarning and ENABLED not in str(w.message)]


# --- the error and the forward traceback ----------------------------------------------------------------------


def test_nan_in_backward_names_the_function_and_where_it_was_made():
    with ad.autograd.detect_anomaly():
        x = ad.tensor([0.0, 1.0], requires_grad=True)
        y = x.sqrt()
        line = _line() - 1
        z = (y * 0.0).sum()
        err, msgs = _caught(z.backward)
    assert isinstance(err, RuntimeError)
    assert str(err) == "Function 'SqrtBackward0' returned nan values in its 0th output."
    assert len(msgs) == 1
    assert msgs[0].startswith("Error detected in SqrtBackward0. Traceback of forward call that caused the error:\n")
    # the last frame is the line that made the op, not ad's internals
    here = f'File "{__file__}", line {line}, in test_nan_in_backward_names_the_function_and_where_it_was_made'
    assert msgs[0].endswith(f"  {here}\n    y = x.sqrt()\n")


def test_nan_from_inf_times_zero_names_the_output_index():
    with ad.autograd.detect_anomaly():
        c = ad.tensor([np.inf])
        y = ad.tensor([1.0], requires_grad=True)
        with np.errstate(invalid="ignore"):  # inf * 0 in the forward too
            z = (c * y * 0.0).sum()  # d(c * y)/dy = inf, times the incoming 0: NaN for y, the second input
        with pytest.raises(RuntimeError, match=r"^Function 'MulBackward0' returned nan values in its 1th output\.$"):
            z.backward()


def test_grads_are_unchanged_after_the_error():
    with ad.autograd.detect_anomaly():
        x, z = _sqrt_at_zero()
        w = ad.tensor([2.0], requires_grad=True)
        loss = z + (w * 3.0).sum()
        w.grad = ad.tensor([5.0])
        with pytest.raises(RuntimeError, match="SqrtBackward0"):
            loss.backward()
    assert x.grad is None
    np.testing.assert_array_equal(w.grad.numpy(), [5.0])


def test_op_made_outside_the_mode_has_no_forward_information():
    x, z = _sqrt_at_zero()
    with ad.autograd.detect_anomaly():
        err, msgs = _caught(z.backward)
    assert "SqrtBackward0" in str(err)
    assert msgs == [
        "Error detected in SqrtBackward0. No forward pass information available. Enable detect anomaly during "
        "forward pass for more information."
    ]


def test_tensor_made_before_the_mode_on_the_same_tape_still_gets_traced():
    x = ad.tensor([0.0, 1.0], requires_grad=True)
    y = x * 1.0  # the thread's tape exists before the mode is turned on
    with ad.autograd.detect_anomaly():
        y2 = y.sqrt()
        line = _line() - 1
        err, msgs = _caught((y2 * 0.0).sum().backward)
    assert "SqrtBackward0" in str(err)
    assert f"line {line}," in msgs[0]


def test_error_raised_by_a_backward_is_preceded_by_the_trace():
    class Boom(ad.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, g):
            raise ValueError("boom")

    with ad.autograd.detect_anomaly():
        x = ad.tensor([1.0], requires_grad=True)
        y = Boom.apply(x)
        line = _line() - 1
        err, msgs = _caught(y.sum().backward)
    assert isinstance(err, ValueError)
    assert msgs[0].startswith("Error detected in BoomBackward.")
    assert f"line {line}," in msgs[0]


# --- every entry point --------------------------------------------------------------------------------------


def test_grad_and_create_graph():
    with ad.autograd.detect_anomaly():
        x, z = _sqrt_at_zero()
        with pytest.raises(RuntimeError, match="'SqrtBackward0' returned nan values in its 0th output"):
            ad.autograd.grad(z, x)
        x, z = _sqrt_at_zero()
        with pytest.raises(RuntimeError, match="'SqrtBackward0' returned nan values in its 0th output"):
            ad.autograd.grad(z, x, create_graph=True)
        x, z = _sqrt_at_zero()
        with pytest.raises(RuntimeError, match="SqrtBackward0"):
            z.backward(create_graph=True)
        assert x.grad is None


def test_custom_function_output_index_counts_tensor_inputs():
    class F(ad.autograd.Function):
        @staticmethod
        def forward(ctx, k, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return None, g, g * float("nan")

    with ad.autograd.detect_anomaly():
        x = ad.tensor([1.0], requires_grad=True)
        y = ad.tensor([1.0], requires_grad=True)
        # as torch: the non-tensor argument is not an output of the backward node
        with pytest.raises(RuntimeError, match=r"^Function 'FBackward' returned nan values in its 1th output\.$"):
            F.apply(3, x, y).sum().backward()


def test_second_backward_names_the_node_that_induced_the_calculation():
    with ad.autograd.detect_anomaly():
        x = ad.tensor([0.0, 1.0], requires_grad=True)
        s = x.sqrt().sum()
        line = _line() - 1
        (g,) = ad.autograd.grad(s, x, create_graph=True)  # 0.5 / sqrt(x): inf at 0
        with np.errstate(invalid="ignore"):  # inf * 0 in the forward too
            z = (g * 0.0).sum()
        err, msgs = _caught(z.backward)
    assert isinstance(err, RuntimeError)
    assert len(msgs) == 2
    assert msgs[1].startswith(
        "\n\nPrevious calculation was induced by SqrtBackward0. Traceback of forward call "
        "that induced the previous calculation:\n"
    )
    assert f"line {line}," in msgs[1]


# --- modes and state ------------------------------------------------------------------------------------------


def test_check_nan_false_lets_nan_through():
    with ad.autograd.detect_anomaly(check_nan=False):
        assert ad.is_anomaly_enabled() and not ad.is_anomaly_check_nan_enabled()
        x, z = _sqrt_at_zero()
        err, msgs = _caught(z.backward)
    assert err is None and msgs == []
    assert np.isnan(x.grad.numpy()[0])


def test_off_changes_nothing():
    assert not ad.is_anomaly_enabled() and ad.is_anomaly_check_nan_enabled()
    x, z = _sqrt_at_zero()
    assert z._tape.traces == {}  # nothing recorded per op
    with np.errstate(all="ignore"):
        err, msgs = _caught(z.backward)
    assert err is None and msgs == []
    assert np.isnan(x.grad.numpy()[0])


def test_turning_it_off_stops_tracing():
    with ad.autograd.detect_anomaly():
        x = ad.tensor([1.0], requires_grad=True)
        y = x * 2.0
    z = y * 3.0
    assert z._tape.traces.get(y._row) is not None
    assert z._tape.traces.get(z._row) is None


def test_enabling_warns():
    with pytest.warns(UserWarning, match="^Anomaly Detection has been enabled. This mode will increase the runtime"):
        ad.autograd.detect_anomaly()


def test_nesting_restores_the_state():
    with ad.autograd.detect_anomaly():
        with ad.autograd.detect_anomaly(check_nan=False):
            assert (ad.is_anomaly_enabled(), ad.is_anomaly_check_nan_enabled()) == (True, False)
            with ad.autograd.set_detect_anomaly(False):
                assert not ad.is_anomaly_enabled()
            assert ad.is_anomaly_enabled()
        assert (ad.is_anomaly_enabled(), ad.is_anomaly_check_nan_enabled()) == (True, True)
        with pytest.raises(KeyError):
            with ad.autograd.set_detect_anomaly(False):
                raise KeyError
        assert ad.is_anomaly_enabled()
    assert (ad.is_anomaly_enabled(), ad.is_anomaly_check_nan_enabled()) == (False, True)


def test_set_detect_anomaly_as_a_function():
    ad.autograd.set_detect_anomaly(True)
    assert ad.is_anomaly_enabled()
    ad.autograd.set_detect_anomaly(False)
    assert not ad.is_anomaly_enabled()
    with pytest.raises(TypeError, match="argument 'enabled' \\(position 1\\) must be bool, not str"):
        ad.autograd.set_detect_anomaly("yes")


def test_decorators():
    @ad.autograd.detect_anomaly(check_nan=False)
    def inside():
        return ad.is_anomaly_enabled(), ad.is_anomaly_check_nan_enabled()

    @ad.autograd.set_detect_anomaly(True)
    def on():
        return ad.is_anomaly_enabled()

    assert not ad.is_anomaly_enabled()  # decorating changes nothing by itself
    assert inside() == (True, False)
    assert on()
    assert (ad.is_anomaly_enabled(), ad.is_anomaly_check_nan_enabled()) == (False, True)


def test_the_mode_is_process_wide_as_torch():
    # torch's AnomalyMode is a global (unlike grad mode): another thread sees it, its ops are traced and
    # its backward is checked
    result = {}

    def work():
        result["seen"] = ad.is_anomaly_enabled()
        x, z = _sqrt_at_zero()
        result["err"], result["msgs"] = _caught(z.backward)

    with ad.autograd.detect_anomaly():
        th = threading.Thread(target=work)
        th.start()
        th.join()
    assert result["seen"]
    assert "SqrtBackward0" in str(result["err"])
    assert "Traceback of forward call" in result["msgs"][0]


def test_module_layout_matches_torch():
    assert ad.autograd.anomaly_mode.__all__ == ["detect_anomaly", "set_detect_anomaly"]
    assert ad.autograd.anomaly_mode.detect_anomaly is ad.autograd.detect_anomaly
    assert ad.autograd.anomaly_mode.set_detect_anomaly is ad.autograd.set_detect_anomaly
