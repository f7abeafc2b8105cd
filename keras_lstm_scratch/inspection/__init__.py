"""Looking inside a trained model: its gates and its gradient through time.

- `gate_probe.py`: `trace_gates` (every gate of every LSTM layer, step by
  step), `summarize_gates` and the `GateHistograms` callback.
- `gradient_flow.py`: `hidden_state_gradient_norms`, `||d loss / d h_t||`
  against the distance from the loss.
"""

from keras_lstm_scratch.inspection.gate_probe import (
    GATES,
    GateHistograms,
    summarize_gates,
    trace_gates,
)
from keras_lstm_scratch.inspection.gradient_flow import (
    gradient_ratio,
    hidden_state_gradient_norms,
)

__all__ = [
    "GATES",
    "GateHistograms",
    "gradient_ratio",
    "hidden_state_gradient_norms",
    "summarize_gates",
    "trace_gates",
]
