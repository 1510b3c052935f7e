"""The paper's optimizer: Ranger (RAdam + Lookahead), and its learning-rate schedule.

Meta-TasNet is trained (the authors' code, github.com/pfnet-research/meta-tasnet) with Ranger, betas
``(0.95, 0.999)``, eps ``1e-5``, Lookahead ``k=6, alpha=0.5``, weight decay ``5e-4``, a
learning rate of ``1e-3`` annealed with cosine warm restarts (period 200,000 steps, each
restart's peak times 0.85) and gradients clipped to a global norm of 5.0.

- ``Ranger``: a Keras 3 optimizer that reproduces lessw2020's ``ranger.py``
  (github.com/lessw2020/Ranger-Deep-Learning-Optimizer, the version the authors used)
  step for step. It keeps Keras' own weight decay, clipping, loss scaling, gradient
  accumulation and EMA, works inside ``tf.function(jit_compile=True)`` and under
  ``tf.distribute`` strategies, and saves its slow (Lookahead) weights with the rest of
  its state. By default its state is a few flat vectors and one update serves all
  variables (``fused``), which keeps the paper model's training graph half as large.
- ``cosine_warm_restarts``: the schedule, as Keras' serializable ``CosineDecayRestarts``.
- ``build_optimizer``: the paper's recipe (or AdamW) from a few plain arguments.
"""

from __future__ import annotations

import re

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tf_metatasnet.compat import optimizer_variable_index
from tf_metatasnet.training import flat_state

__all__ = ["Ranger", "build_optimizer", "cosine_warm_restarts"]


def _constant(value, dtype):
    """A Python number as a tensor of ``dtype``; ``ops.cast`` would round it to float32
    first (``ops.cast(0.95, "float64")`` is 0.949999988)."""
    return ops.convert_to_tensor(value, dtype=dtype)


def _copy_of(reference, flatten=False):
    """An initializer that returns ``reference``'s current value (with ``flatten``, the
    variables ``reference`` raveled and concatenated, ``flat_state.flatten``).

    It reads the value under ``tf.init_scope`` so that building the optimizer during the
    first trace of a ``tf.function`` copies the variable once, eagerly, instead of baking
    a read of it into the traced graph.
    """

    def initializer(shape, dtype=None):
        with tf.init_scope():
            if flatten:
                value = flat_state.flatten([ops.convert_to_tensor(v) for v in reference])
            else:
                value = tf.identity(ops.convert_to_tensor(reference))
        return tf.cast(value, dtype) if dtype is not None else value

    return initializer


class _Members:
    """The variables a fused Ranger updates, held where Keras's attribute tracking does not
    look (a list attribute would add them to the optimizer's own ``variables``)."""

    def __init__(self, variables):
        self.variables = tuple(variables)


@keras.saving.register_keras_serializable(package="tf_metatasnet")
class Ranger(keras.optimizers.Optimizer):
    """Ranger: RAdam with Lookahead, as in lessw2020's ``ranger.py``.

    Per variable ``x`` with gradient ``g`` at update ``t`` (1-based; the number of
    updates actually applied, see below):

    - ``m = beta_1 * m + (1 - beta_1) * g``, ``v = beta_2 * v + (1 - beta_2) * g**2``;
    - RAdam's rectification: ``N_max = 2 / (1 - beta_2) - 1``,
      ``N_t = N_max - 2 t beta_2**t / (1 - beta_2**t)``. While ``N_t > sma_threshold``,
      ``x -= lr * r_t / (1 - beta_1**t) * m / (sqrt(v) + epsilon)`` with
      ``r_t = sqrt((1 - beta_2**t) (N_t - 4)(N_t - 2) N_max / ((N_max - 4)(N_max - 2) N_t))``;
      before that (the first ~5 updates with ``beta_2=0.999``) the variance estimate is
      not trusted and the step is bias-corrected momentum SGD,
      ``x -= lr / (1 - beta_1**t) * m``;
    - Lookahead: a slow copy of every variable, initialised to the variable's value when
      the optimizer is built; after every ``lookahead_steps``-th update,
      ``slow += lookahead_alpha * (x - slow)`` and ``x = slow``.

    The scalar coefficients are computed in float64, as ``ranger.py`` does with Python
    floats: ``N_t`` crosses the threshold 5 between ``t=5`` (4.996) and ``t=6`` (5.994),
    and float32 is off by ~0.01 there. Both branches are selected with ``where`` rather than
    Python or graph control flow, so one traced step serves every ``t`` (XLA, distribution
    strategies). Like ``ranger.py``, gradients are densified (no sparse updates).

    Keras' decoupled ``weight_decay`` (``x -= x * weight_decay * lr`` before the update)
    is ``ranger.py``'s weight decay. ``t`` is ``self.iterations + 1``: with
    ``gradient_accumulation_steps`` it counts real updates (``iterations`` is the micro-step
    counter divided by the accumulation steps) while a learning-rate schedule still sees
    micro-steps; under ``LossScaleOptimizer`` a step skipped for non-finite gradients
    advances neither ``t`` nor the Lookahead cycle.

    Args:
        learning_rate: float, ``LearningRateSchedule`` or callable. Defaults to ``1e-3``.
        beta_1: decay of the first moment. Defaults to ``0.95`` (the paper's).
        beta_2: decay of the second moment. Defaults to ``0.999``.
        epsilon: added to ``sqrt(v)``. Defaults to ``1e-5`` (the paper's).
        lookahead_steps: ``k``, fast updates per Lookahead synchronisation. Defaults to 6.
        lookahead_alpha: step of the slow weights towards the fast ones. Defaults to 0.5.
        sma_threshold: ``N_t`` above which the adaptive (rectified) step is used. Defaults
            to 5.0.
        weight_decay, clipnorm, clipvalue, use_ema, ema_momentum,
        ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps: as in
            ``keras.optimizers.Optimizer``.
        global_clipnorm: the global norm the gradient is clipped to, as in Keras but over the
            whole batch: under a distribution strategy the replicas' summed gradient is
            clipped (PyTorch's ``clip_grad_norm_`` on the authors' summed gradient), not each
            replica's share as Keras does.
        fused: keep ``m``, ``v`` and the slow weights as a few flat vectors
            (``flat_state``) and update every variable with one set of operations
            instead of one set per variable: the same arithmetic, about 9 operations a variable
            in the graph instead of about 40. ``None`` (the default) fuses unless Keras's
            per-variable features are asked for (``clipnorm``, ``clipvalue``,
            ``gradient_accumulation_steps``, ``use_ema``), which need ``fused=False``.
            Either layout loads the other's saved state.
        name: defaults to ``"ranger"``.
    """

    #: Values that depend only on the step, computed on first use while ``apply`` runs
    #: (a dict then, ``None`` otherwise).
    _step_cache = None

    def __init__(
        self,
        learning_rate=1e-3,
        beta_1=0.95,
        beta_2=0.999,
        epsilon=1e-5,
        lookahead_steps=6,
        lookahead_alpha=0.5,
        sma_threshold=5.0,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        fused=None,
        name="ranger",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=None,  # clipped in ``apply``, across replicas (``clip_global_norm``)
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        if not 0.0 <= beta_1 < 1.0:
            raise ValueError(f"`beta_1` must be in [0, 1). Received: beta_1={beta_1}")
        if not 0.0 < beta_2 < 1.0:
            raise ValueError(f"`beta_2` must be in (0, 1). Received: beta_2={beta_2}")
        if not epsilon >= 0.0:
            raise ValueError(f"`epsilon` must be >= 0. Received: epsilon={epsilon}")
        if int(lookahead_steps) != lookahead_steps or lookahead_steps < 1:
            raise ValueError("`lookahead_steps` must be an integer >= 1. "
                             f"Received: lookahead_steps={lookahead_steps}")
        if not 0.0 < lookahead_alpha <= 1.0:
            raise ValueError("`lookahead_alpha` must be in (0, 1]. "
                             f"Received: lookahead_alpha={lookahead_alpha}")
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.lookahead_steps = int(lookahead_steps)
        self.lookahead_alpha = lookahead_alpha
        self.sma_threshold = sma_threshold
        if global_clipnorm is not None and (clipnorm is not None or clipvalue is not None):
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                             f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        #: ``global_clipnorm``: the gradient's global norm is clipped to this, over the whole
        #: batch (the sum over replicas under a distribution strategy); see ``apply``.
        self.clip_global_norm = global_clipnorm
        per_variable = {name: value for name, value in dict(
            clipnorm=clipnorm, clipvalue=clipvalue, use_ema=use_ema,
            gradient_accumulation_steps=gradient_accumulation_steps).items() if value}
        if fused is None:
            fused = not per_variable
        elif fused and per_variable:
            raise ValueError(f"`fused=True` cannot be combined with {sorted(per_variable)}, which "
                             "Keras applies per variable; pass `fused=False`.")
        self.fused = bool(fused)
        #: Ids of variables excluded from weight decay, and the name pattern (``fused``).
        self._decay_excluded = (set(), None)

    def build(self, var_list):
        """Create ``m``, ``v`` (zeros) and the slow weights (copies) for ``var_list``: one
        of each per variable, or per bucket of variables when ``fused``."""
        if self.built:
            return
        var_list = list(var_list)
        super().build(var_list)
        if not self.fused:
            self._momentums, self._velocities = self.add_optimizer_variables(
                var_list, ["momentum", "velocity"])
            # Variables that Keras overwrites with their gradient (float8 scales) get none,
            # like add_optimizer_variables does.
            self._slow_weights = [
                None if getattr(variable, "overwrite_with_gradient", False)
                else self.add_variable_from_reference(variable, name="slow",
                                                      initializer=_copy_of(variable))
                for variable in var_list
            ]
            return
        if any(getattr(variable, "overwrite_with_gradient", False) for variable in var_list):
            raise ValueError("Variables overwritten with their gradient (float8 training) "
                             "need `Ranger(fused=False)`.")
        self._members = _Members(var_list)
        self._buckets = flat_state.plan_buckets(var_list, flat_state.DEFAULT_BUCKET_SIZE)
        self._momentums, self._velocities, self._slow_weights = [], [], []
        for number, bucket in enumerate(self._buckets):
            for name, slots in (("momentum", self._momentums), ("velocity", self._velocities)):
                slots.append(self.add_variable((bucket.size,), dtype=bucket.dtype,
                                               name=f"{name}_{number}"))
        for number, bucket in enumerate(self._buckets):
            members = [var_list[i] for i in bucket.indices]
            self._slow_weights.append(self.add_variable(
                (bucket.size,), dtype=bucket.dtype, name=f"slow_{number}",
                initializer=_copy_of(members, flatten=True)))
        excluded, pattern = self._decay_excluded
        self._decay_masks = []  # per bucket: None (all decay) or a bool mask of its elements
        for bucket in self._buckets:
            decays = [id(var_list[i]) not in excluded
                      and (pattern is None or re.search(pattern, var_list[i].name) is None)
                      for i in bucket.indices]
            self._decay_masks.append(None if all(decays) else np.repeat(decays, bucket.sizes))

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """As Keras's (before ``build``); recorded for the fused update too."""
        super().exclude_from_weight_decay(var_list=var_list, var_names=var_names)
        self._decay_excluded = ({id(variable) for variable in var_list or ()},
                                "|".join(set(var_names)) if var_names else None)

    def state_variables(self, name):
        """The optimizer variables holding ``name`` (``"momentum"``, ``"velocity"`` or
        ``"slow"``): one per trainable variable, or one per bucket when ``fused``."""
        slots = {"momentum": "_momentums", "velocity": "_velocities", "slow": "_slow_weights"}
        if name not in slots:
            raise ValueError(f"Unknown state {name!r}; expected one of {sorted(slots)}.")
        return list(getattr(self, slots[name], []))

    def slots(self, name):
        """``name``'s values (``"momentum"``, ``"velocity"`` or ``"slow"``) one tensor per
        trainable variable, in build order, whatever the layout (empty until built)."""
        variables = self.state_variables(name)
        if not self.fused:
            return [None if v is None else tf.convert_to_tensor(v) for v in variables]
        values = []
        for bucket, flat in zip(self._buckets, variables):
            values.extend(flat_state.unflatten(tf.convert_to_tensor(flat), bucket))
        return values

    @property
    def slow_weights(self):
        """The Lookahead slow weights' values, one per trainable variable (build order;
        empty until built; ``None`` for variables overwritten with their gradient)."""
        return self.slots("slow")

    def sync_slow_weights(self, var_list):
        """Sets the slow weights to ``var_list``'s current values (build order).

        For weights loaded into a model after the optimizer was built, as fine-tuning
        does: the slow weights were copied at ``build``, and the first Lookahead step would
        otherwise pull the loaded weights halfway back to those copies.
        """
        var_list = list(var_list)
        if self.fused:
            for bucket, slow in zip(self._buckets, self._slow_weights):
                slow.assign(flat_state.flatten([var_list[i] for i in bucket.indices]))
            return
        for slow, variable in zip(self._slow_weights, var_list):
            if slow is not None:
                slow.assign(variable)

    def load_own_variables(self, store):
        """Keras's, and state saved in the other layout (per variable or in buckets of
        another size; ``flat_state.regroup``) is converted instead of skipped."""
        count = len(store.keys())
        ours = self.variables
        states = [self.state_variables(name) for name in ("momentum", "velocity", "slow")]
        head = len(ours) - sum(map(len, states))  # the step counter, a learning-rate variable
        if (not self.built or any(v is None for slots in states for v in slots)
                or count <= head or (count - head) % 3
                or (count == len(ours) and all(tuple(np.shape(store[str(i)])) == tuple(v.shape)
                                               for i, v in enumerate(ours)))):
            return super().load_own_variables(store)
        units = (count - head) // 3
        arrays = [store[str(i)] for i in range(count)]
        layout = {"momentum": arrays[head:head + 2 * units:2],
                  "velocity": arrays[head + 1:head + 2 * units:2],
                  "slow": arrays[head + 2 * units:]}
        sizes = [int(np.prod(v.shape)) for v in self._slow_weights]
        parts = {name: flat_state.regroup(values, sizes) for name, values in layout.items()}
        if any(value is None for value in parts.values()):
            return super().load_own_variables(store)
        for variable, array in zip(ours[:head], arrays[:head]):
            variable.assign(np.asarray(array))
        for name, values in parts.items():
            for variable, value in zip(self.state_variables(name), values):
                variable.assign(np.reshape(value, variable.shape))
        return None

    def _step_coefficients(self, local_step):
        """``(rectified, step_size)`` for update ``local_step``; float64 scalars."""
        t = ops.cast(local_step, "float64")
        beta_1 = float(self.beta_1)
        beta_2 = float(self.beta_2)
        beta_2_power = ops.power(_constant(beta_2, "float64"), t)
        bias_1 = 1.0 - ops.power(_constant(beta_1, "float64"), t)
        sma_max = 2.0 / (1.0 - beta_2) - 1.0
        sma = sma_max - 2.0 * t * beta_2_power / (1.0 - beta_2_power)
        rectified = ops.greater(sma, float(self.sma_threshold))
        # Only used where rectified; the clamp keeps a threshold below 4 NaN-free.
        rectification = ops.sqrt(ops.maximum(
            (1.0 - beta_2_power) * (sma - 4.0) / (sma_max - 4.0) * (sma - 2.0) / sma
            * sma_max / (sma_max - 2.0), 0.0))
        step_size = ops.where(rectified, rectification, 1.0) / bias_1
        return rectified, step_size

    def _step_values(self):
        """``(rectified, step_size, sync)`` of the current update, once per step (see ``apply``)."""
        if self._step_cache is not None and "values" in self._step_cache:
            return self._step_cache["values"]
        local_step = self.iterations + 1
        values = (*self._step_coefficients(local_step),
                  ops.equal(ops.mod(local_step, self.lookahead_steps), 0))
        if self._step_cache is not None:
            self._step_cache["values"] = values
        return values

    @property
    def learning_rate(self):
        """The current learning rate (a schedule's value at this step); while ``apply`` runs,
        the schedule is evaluated once and shared by every variable's update and decay."""
        if self._step_cache is not None and "learning_rate" in self._step_cache:
            return self._step_cache["learning_rate"]
        value = super().learning_rate
        if self._step_cache is not None:
            self._step_cache["learning_rate"] = value
        return value

    @learning_rate.setter
    def learning_rate(self, value):
        keras.optimizers.Optimizer.learning_rate.fset(self, value)

    def apply(self, grads, trainable_variables=None):
        """Keras's ``apply``, with the values that depend only on the step (the learning-rate
        schedule, RAdam's rectification, the Lookahead sync) computed once per step on first
        use, not once per variable: with ~1,500 variables that keeps tens of thousands of ops
        out of the graph (faster tracing, less memory)."""
        self._step_cache = {}
        try:
            if self.fused:
                return self._fused_apply(list(grads), trainable_variables)
            if self.clip_global_norm is not None:
                grads = self._clip_global_norm(list(grads))
            return super().apply(grads, trainable_variables)
        finally:
            self._step_cache = None

    def _fused_apply(self, grads, trainable_variables):
        """``apply`` with the flat state: Keras's steps (build, unscale, all-reduce, weight
        decay, update, constraints, step counter) with one update for all variables."""
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer "
                                 "must already be built on a list of variables.")
            trainable_variables = self._members.variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        known = [id(v) for v in self._members.variables]
        if [id(v) for v in trainable_variables] != known:
            raise ValueError(f"Ranger(fused=True) was built on {len(known)} variables and "
                             "updates exactly those, in that order; received "
                             f"{len(trainable_variables)} others.")
        if len(grads) != len(trainable_variables):
            raise ValueError(f"Received {len(grads)} gradients for "
                             f"{len(trainable_variables)} variables.")
        with keras.name_scope(self.name, caller=self):
            present = [g is not None for g in grads]
            if not any(present):
                raise ValueError("No gradients provided for any variable.")
            grads = [tf.convert_to_tensor(g) for g in grads if g is not None]
            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            found = iter(grads)
            grads = [next(found) if p else None for p in present]
            if context is None:
                self._fused_merge(tf.distribute.get_strategy(), grads)
            else:
                context.merge_call(self._fused_merge, args=(grads,))
            for variable in trainable_variables:
                if variable.constraint is not None:
                    variable.assign(variable.constraint(variable))
        self.iterations.assign_add(1)

    def _fused_merge(self, strategy, grads):
        """Cross-replica part of ``_fused_apply``: the step's scalars once, then the update on
        every replica's copy (``extended.update`` hands each its gradients)."""
        self._step_cache = {}
        learning_rate = self.learning_rate
        rectified, _, sync = self._step_values()
        decay = None if self.weight_decay is None else learning_rate
        anchor = self._momentums[0]
        strategy.extended.update(
            anchor.value, self._fused_update, args=(grads, learning_rate, decay, rectified, sync),
            group=False)

    def _fused_update(self, _, grads, learning_rate, decay, rectified, sync):
        """One Ranger update of every variable, a bucket at a time (on one replica's copy):
        the whole batch's gradient clipped to its global norm (still loss-scaled, so the
        norm is scaled too), unscaled, then Ranger's arithmetic on the flat vectors."""
        variables = self._members.variables
        flats = [flat_state.flatten([  # (bucket.size,)
            tf.zeros(variables[i].shape, bucket.dtype) if grads[i] is None
            else tf.cast(grads[i], bucket.dtype) for i in bucket.indices])
            for bucket in self._buckets]
        loss_scale = self.loss_scale_factor
        if self.clip_global_norm is not None:
            flats, _ = tf.clip_by_global_norm(flats, self.clip_global_norm * (loss_scale or 1.0))
        if loss_scale is not None:
            flats = [g / loss_scale for g in flats]
        for number, (bucket, gradient) in enumerate(zip(self._buckets, flats)):
            dtype = tf.as_dtype(bucket.dtype)
            scale, beta_1, rest_1, beta_2, rest_2, epsilon, alpha = self._step_constants(
                learning_rate, dtype)
            members = [variables[i] for i in bucket.indices]
            missing = [grads[i] is None for i in bucket.indices]
            x = flat_state.flatten([tf.convert_to_tensor(v) for v in members])
            m_variable = self._momentums[number]
            v_variable = self._velocities[number]
            slow_variable = self._slow_weights[number]
            if decay is not None:  # Keras's decoupled decay: x -= x * weight_decay * lr
                decayed = x - x * tf.cast(self.weight_decay, dtype) * tf.cast(decay, dtype)
                mask = self._decay_masks[number]
                x = decayed if mask is None else tf.where(mask, decayed, x)
            m_old = tf.convert_to_tensor(m_variable)
            v_old = tf.convert_to_tensor(v_variable)
            m = m_old * beta_1 + gradient * rest_1
            v = v_old * beta_2 + tf.square(gradient) * rest_2
            direction = tf.where(rectified, m / (tf.sqrt(v) + epsilon), m)
            fast = x - scale * direction
            # Lookahead, every k-th update: slow += alpha (fast - slow); fast = slow.
            slow = tf.convert_to_tensor(slow_variable)
            pulled = slow + alpha * (fast - slow)
            new_slow = tf.where(sync, pulled, slow)
            new_x = tf.where(sync, pulled, fast)
            if any(missing):  # variables without a gradient keep their state, as in Keras
                keep = np.repeat(missing, bucket.sizes)
                m = tf.where(keep, m_old, m)
                v = tf.where(keep, v_old, v)
                new_slow = tf.where(keep, slow, new_slow)
            self.assign(m_variable, m)
            self.assign(v_variable, v)
            self.assign(slow_variable, new_slow)
            for index, (variable, value) in enumerate(
                    zip(members, flat_state.unflatten(new_x, bucket))):
                if not missing[index]:
                    self.assign(variable, value)

    def _clip_global_norm(self, grads):
        """``clip_grad_norm_`` of the whole batch's gradient, as the authors' one process does.

        Keras's own ``global_clipnorm`` clips each replica's share before the replicas'
        gradients are summed; under a strategy that is another update whenever the clip is
        active. Here the replicas' sum is clipped, and each replica hands Keras an equal
        share of it to sum again (exact for 2 or 4 replicas: halving is exact).
        """
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        present = [g for g in grads if g is not None]
        if replicas > 1:
            present = context.all_reduce(tf.distribute.ReduceOp.SUM, present)
        scale = self.loss_scale_factor or 1.0   # grads still scaled: clip to the scaled norm
        present, _ = tf.clip_by_global_norm(present, self.clip_global_norm * scale)
        if replicas > 1:
            present = [g / replicas for g in present]
        found = iter(present)
        return [None if g is None else next(found) for g in grads]

    def _step_constants(self, learning_rate, dtype):
        """``(scale, beta_1, 1 - beta_1, beta_2, 1 - beta_2, epsilon, alpha)`` as ``dtype``
        tensors, made once per step and dtype while ``apply`` runs (one set for all
        variables instead of one per variable: fewer ops to trace and optimise)."""
        key = ("constants", dtype)
        if self._step_cache is not None and key in self._step_cache:
            return self._step_cache[key]
        _, step_size, _ = self._step_values()
        scale = tf.cast(tf.cast(learning_rate, tf.float64) * step_size, dtype)
        # 1 - beta in Python, as ranger.py: in float32, 1 - 0.999 is off by 1.3e-5.
        beta_1, beta_2 = float(self.beta_1), float(self.beta_2)
        values = (scale, *(tf.constant(v, dtype) for v in (
            beta_1, 1.0 - beta_1, beta_2, 1.0 - beta_2, self.epsilon, self.lookahead_alpha)))
        if self._step_cache is not None:
            self._step_cache[key] = values
        return values

    def update_step(self, gradient, variable, learning_rate):
        """One Ranger update of ``variable`` (after Keras' clipping and weight decay).

        Written with TensorFlow ops on tensors read once: with ~1,500 variables in the
        paper model, every op here is ~1,500 ops in the training graph."""
        dtype = tf.as_dtype(variable.dtype)
        if gradient.dtype != dtype:
            gradient = tf.cast(gradient, dtype)
        index = optimizer_variable_index(self, variable)
        m_variable = self._momentums[index]
        v_variable = self._velocities[index]
        slow_variable = self._slow_weights[index]
        rectified, _, sync = self._step_values()
        scale, beta_1, rest_1, beta_2, rest_2, epsilon, alpha = self._step_constants(learning_rate, dtype)

        m = tf.convert_to_tensor(m_variable) * beta_1 + gradient * rest_1
        v = tf.convert_to_tensor(v_variable) * beta_2 + tf.square(gradient) * rest_2
        self.assign(m_variable, m)
        self.assign(v_variable, v)
        direction = tf.where(rectified, m / (tf.sqrt(v) + epsilon), m)
        fast = tf.convert_to_tensor(variable) - scale * direction

        # Lookahead, every k-th update: slow += alpha (fast - slow); fast = slow.
        slow = tf.convert_to_tensor(slow_variable)
        pulled = slow + alpha * (fast - slow)
        self.assign(slow_variable, tf.where(sync, pulled, slow))
        self.assign(variable, tf.where(sync, pulled, fast))

    def get_config(self):
        config = super().get_config()
        config.update({
            "global_clipnorm": self.clip_global_norm,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "lookahead_steps": self.lookahead_steps,
            "lookahead_alpha": self.lookahead_alpha,
            "sma_threshold": self.sma_threshold,
            "fused": self.fused,
        })
        return config


def cosine_warm_restarts(learning_rate=1e-3, period=200_000, peak_decay=0.85, minimum=0.0):
    """The paper's schedule: cosine annealing with warm restarts of a fixed period.

    ``learning_rate`` is annealed along a half cosine to ``minimum`` over ``period``
    steps, then restarted; the ``i``-th restart's peak is ``peak_decay**i`` times the
    first (exactly so for ``minimum=0``; Keras keeps the floor at ``minimum``, so a peak
    is ``minimum + (learning_rate - minimum) * peak_decay**i``).

    Returns a ``keras.optimizers.schedules.CosineDecayRestarts`` with ``t_mul=1.0``,
    ``m_mul=peak_decay`` and ``alpha=minimum / learning_rate``; it is evaluated at the
    optimizer's raw step counter and serializes with the optimizer.
    """
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be > 0. Received: {learning_rate}")
    if not 0 <= minimum <= learning_rate:
        raise ValueError(f"`minimum` must be in [0, learning_rate]. Received: {minimum}")
    if not period >= 1:
        raise ValueError(f"`period` must be >= 1. Received: {period}")
    return keras.optimizers.schedules.CosineDecayRestarts(
        initial_learning_rate=float(learning_rate),
        first_decay_steps=int(period),
        t_mul=1.0,
        m_mul=float(peak_decay),
        alpha=float(minimum) / float(learning_rate),
    )


def build_optimizer(name="ranger", learning_rate=1e-3, weight_decay=5e-4, clipnorm=5.0,
                    schedule=True, period=200_000, peak_decay=0.85, minimum=0.0, **kwargs):
    """The paper's optimizer (``"ranger"``) or Keras' AdamW (``"adamw"``).

    Args:
        name: ``"ranger"`` (default) or ``"adamw"``; case-insensitive.
        learning_rate: a float peak learning rate, or a ready ``LearningRateSchedule``
            (then used as is). Defaults to ``1e-3``.
        weight_decay: decoupled weight decay. Defaults to ``5e-4``.
        clipnorm: the gradients' *global* norm is clipped to this (PyTorch's
            ``clip_grad_norm_``, as the authors do); ``None`` for no clipping. Defaults to
            ``5.0``.
        schedule: wrap a float ``learning_rate`` in ``cosine_warm_restarts(learning_rate,
            period, peak_decay, minimum)``. Defaults to ``True``.
        period, peak_decay, minimum: the schedule's, see ``cosine_warm_restarts``.
        **kwargs: further arguments of the optimizer, e.g. ``beta_1`` or
            ``gradient_accumulation_steps``; they override the recipe's.

    With the defaults this is the authors' recipe: Ranger with betas
    ``(0.95, 0.999)``, eps ``1e-5``, ``k=6``, ``alpha=0.5``, weight decay ``5e-4``, global
    norm 5.0 and cosine warm restarts of period 200,000 steps with peaks times 0.85.
    """
    key = str(name).lower()
    if key not in ("ranger", "adamw"):
        raise ValueError(f"Unknown optimizer {name!r}; expected 'ranger' or 'adamw'.")
    if isinstance(learning_rate, (int, float)):
        learning_rate = float(learning_rate)
        if schedule:
            learning_rate = cosine_warm_restarts(learning_rate, period=period,
                                                 peak_decay=peak_decay, minimum=minimum)
    options = dict(learning_rate=learning_rate, weight_decay=weight_decay,
                   global_clipnorm=clipnorm)
    if key == "ranger":
        options.update(beta_1=0.95, beta_2=0.999, epsilon=1e-5, lookahead_steps=6,
                       lookahead_alpha=0.5)
        options.update(kwargs)
        return Ranger(**options)
    options.update(kwargs)
    return keras.optimizers.AdamW(**options)
