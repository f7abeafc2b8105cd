"""SGD and Adam whose gradient clipping sees the whole batch under
tf.distribute.

Keras clips gradients (`clipnorm`, `global_clipnorm`) inside each replica,
before the replicas' gradients are summed: with `R` replicas each share is
clipped on its own, so the update differs from one device's on the same
global batch whenever clipping is active, which with the book's threshold
of 0.25 is nearly every step. `GlobalBatchClippedSGD` (and
`GlobalBatchClippedAdam`) sums the shares
first, clips the sum, and hands each replica `1/R` of the clipped
gradient, which Keras's own sum then turns back into exactly the clipped
gradient. The cost is one more all-reduce of the gradients per step; with
one replica nothing changes.

Keras has no public hook for this: `_clip_gradients` is the private method
its optimizers call between computing and applying the gradients, hence
the pinned Keras minor version.
"""

import keras
import tensorflow as tf


class GlobalBatchClipping:
    """Mixin for a Keras optimizer: its clipping sees the global batch.

    Under several replicas it sums their gradients, clips the sum with the
    optimizer's own `clipnorm` / `global_clipnorm` / `clipvalue`, and hands
    each replica `1/R` of the result; otherwise Keras's clipping is exact.
    """

    def _clip_gradients(self, grads):
        # `grads` holds no None: Keras filters empty gradients first.
        if keras.backend.backend() != "tensorflow":  # one device there
            return super()._clip_gradients(grads)
        replica = tf.distribute.get_replica_context()
        clips = self.clipnorm or self.global_clipnorm or self.clipvalue
        if not clips or replica is None or replica.num_replicas_in_sync == 1:
            return super()._clip_gradients(grads)
        summed = replica.all_reduce(  # the global batch's gradient
            tf.distribute.ReduceOp.SUM,
            [tf.convert_to_tensor(g) for g in grads],  # IndexedSlices too
        )
        replicas = replica.num_replicas_in_sync
        return [g / replicas for g in super()._clip_gradients(summed)]


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class GlobalBatchClippedSGD(GlobalBatchClipping, keras.optimizers.SGD):
    """`keras.optimizers.SGD` that clips the gradient of the global batch.

    Takes the arguments of `keras.optimizers.SGD` (`learning_rate`,
    `momentum`, `clipnorm`, `global_clipnorm`, ...) and behaves the same on
    one device; under a `tf.distribute` strategy with several replicas it
    clips the summed gradient (see the module docstring), so a distributed
    step equals a one-device step on the same global batch.

    Example:

    >>> optimizer = GlobalBatchClippedSGD(20.0, global_clipnorm=0.25)
    """


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class GlobalBatchClippedAdam(GlobalBatchClipping, keras.optimizers.Adam):
    """`keras.optimizers.Adam` that clips the gradient of the global batch.

    Takes the arguments of `keras.optimizers.Adam`; the same on one
    device, and under several replicas it clips their summed gradient, as
    `GlobalBatchClippedSGD` does.

    Example:

    >>> optimizer = GlobalBatchClippedAdam(0.002, global_clipnorm=1.0)
    """


@keras.saving.register_keras_serializable(package="keras_lstm_scratch")
class ClippedSGD(GlobalBatchClippedSGD):
    """`GlobalBatchClippedSGD` under its name before 0.2.

    Kept registered so that runs saved with that name (`best.keras` holds
    the compiled optimizer) still load.
    """
