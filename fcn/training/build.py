"""The training graph: the network, the prediction path (fcn.inference.prediction) and the
training ops on top, in one session's graph, with the encoder's weights loaded."""

import contextlib
import dataclasses

import tensorflow.compat.v1 as tf

from fcn import data, models, names, precision
from fcn.errors import UserError
from fcn.inference import prediction
from fcn.models import encoders, layers, weights
from fcn.training import distribute, losses


@dataclasses.dataclass
class TrainingTensors(prediction.PredictionTensors):
    """The prediction path's tensors (fcn.inference.prediction) and the training ops on top."""

    labels: tf.Tensor = None  # uint8 (N, h, w) class ids, IGNORE_LABEL where unlabelled
    learning_rate: tf.Tensor = None  # float32 scalar, fed every step
    train_op: tf.Operation = None
    loss: tf.Tensor = None  # the fed batch's loss (validation, and one device's training)
    weights: str = ""  # where the encoder's weights came from
    setup: object = None  # fcn.training.distribute.Setup; None on one device
    step_loss: tf.Tensor = None  # fcn.training.distribute: the global batch's loss of a step
    stop_votes: tf.Tensor = None  # fcn.training.distribute: the workers' summed stop requests
    stop_flag: tf.Tensor = None  # fcn.training.distribute: this worker's stop request, fed

    @property
    def training_loss(self):
        """The loss a training step reports: the global batch's under fcn.training.distribute."""
        return self.loss if self.step_loss is None else self.step_loss


def build_model(sess, config, num_classes, log=None, spec=None, loss_weights=None, setup=None):
    """Build encoder, decoder, the prediction path and the training ops in sess's graph, then
    initialise the variables and load the encoder's pretrained weights (fcn.models).

    spec: the resolved dataset (default: config.dataset's descriptor). loss_weights: per-class
    weights (C,) for the weighted losses (config.loss), from fcn.training.class_weights.

    setup: a fcn.training.distribute.Setup to train on several devices or workers (None: one device,
    the graph exactly as always). There the prediction path and `loss` (validation) run in
    cross-replica context on the mirrored variables, and the training step is the replicas'
    (`_replica_train_op`); its global-batch loss is `step_loss`, its stop request `stop_votes`.

    Returns TrainingTensors: the prediction path's, labels, learning_rate, train_op, loss, and
    `weights`, where the encoder's weights came from.
    """
    spec = spec or data.get_spec(config.dataset)
    source, arrays, config = models.read_weights(config)
    tf.set_random_seed(config.seed)
    built = {}

    def network(x, is_training, keep_prob):
        built.update(models.build_network(x, config, num_classes, is_training, keep_prob))
        return built["logits"]

    # Variables made under a strategy's scope are mirrored on every replica of this worker.
    with setup.strategy.scope() if setup else contextlib.nullcontext():
        model = prediction.build(network, config, spec)
    encoder_variables = built["encoder_variables"]
    # Everything the network owns (weights and batch-norm statistics): what best/ and exports keep.
    for v in tf.global_variables():
        tf.add_to_collection(tf.GraphKeys.MODEL_VARIABLES, v)
    trainable = [v for v in encoder_variables if v in tf.trainable_variables()]
    frozen = frozen_variables(trainable, config.freeze)
    labels = tf.placeholder(tf.uint8, [None, None, None], names.LABELS)
    learning_rate = tf.placeholder(tf.float32, [], names.LEARNING_RATE)
    data_loss = losses.segmentation_loss(
        config.loss,
        model.logits,
        labels,
        num_classes,
        class_weights=loss_weights,
        gamma=config.focal_gamma,
        alpha=config.focal_alpha,
    )
    loss = tf.identity(data_loss, name=names.LOSS)
    prec = precision.resolve(config.precision)
    var_list = [v for v in tf.trainable_variables() if v not in frozen] if frozen else None
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
    if setup is None:
        train_op = losses.minimize(
            loss,
            learning_rate,
            config.l2_scale,
            loss_scale=precision.loss_scale_for(prec),
            var_list=var_list,
        )
    else:
        replica = _replica_train_op(
            setup, config, num_classes, model, labels, learning_rate, loss_weights, var_list
        )
        train_op = replica.pop("train_op")
        fields.update(replica, setup=setup)
    sess.run(tf.global_variables_initializer())
    source = models.assign_weights(
        sess, encoder_variables, arrays, source, log=log or (lambda *a: None)
    )
    del arrays  # up to 540 MB of VGG16 weights
    return TrainingTensors(
        **fields,
        labels=labels,
        learning_rate=learning_rate,
        train_op=train_op,
        loss=loss,
        weights=source,
    )


def _replica_train_op(
    setup, config, num_classes, model, labels, learning_rate, loss_weights, var_list
):
    """The synchronous training step of fcn.training.distribute: every replica runs the network on
    its
    shard of the fed image_input (B/W, h, w, 3) and labels, with the prediction path's variables
    (reused, so checkpoints keep the single-device names), and minimises loss / replicas: the v1
    optimizer sums the replicas' gradients, so that is the gradient of the global batch's mean.

    Returns {train_op, step_loss (the global batch's loss), stop_votes, stop_flag}.
    """
    graph = tf.get_default_graph()
    # The prediction path's batch-norm updates are not training's: each replica makes its own.
    graph.clear_collection(tf.GraphKeys.UPDATE_OPS)
    prec = precision.resolve(config.precision)
    with setup.strategy.scope():
        tf.train.get_or_create_global_step()  # mirrored, made once in cross-replica context

    def step(images, shard_labels, replicas):
        # Reusing the network adds its decoder kernels to the L2 collection again; the penalty
        # must count each once.
        l2_kernels = graph.get_collection_ref(layers.L2_COLLECTION)
        n_kernels = len(l2_kernels)
        with tf.variable_scope(tf.get_variable_scope(), reuse=True, auxiliary_name_scope=False):
            out = models.build_network(
                prediction.normalize(images, config.normalize),
                config,
                num_classes,
                model.is_training,
                model.keep_prob,
            )
        del l2_kernels[n_kernels:]
        shard_loss = losses.segmentation_loss(
            config.loss,
            out["logits"],
            shard_labels,
            num_classes,
            class_weights=loss_weights,
            gamma=config.focal_gamma,
            alpha=config.focal_alpha,
        )
        train_op = losses.minimize(
            shard_loss / replicas,
            learning_rate,
            config.l2_scale / replicas,
            loss_scale=precision.loss_scale_for(prec),
            var_list=var_list,
        )
        return train_op, shard_loss

    stop_flag = tf.placeholder_with_default(0.0, [], "stop_flag")
    train_op, step_loss, stop_votes = distribute.replica_step(
        setup, model.image_input, labels, step, stop_flag
    )
    return dict(train_op=train_op, step_loss=step_loss, stop_votes=stop_votes, stop_flag=stop_flag)


def frozen_variables(encoder_variables, freeze):
    """The encoder variables named by `--freeze` ('fc6,fc7': every variable under those scopes,
    relative to the encoder's scope).

    A prefix that matches nothing is an error naming the scopes there are, so a typo never
    silently trains everything.
    """
    prefixes = [p.strip().strip("/") for p in freeze.split(",") if p.strip()]
    relative = {v: weights.relative_name(v, encoders.SCOPE) for v in encoder_variables}
    frozen = []
    for prefix in prefixes:
        hits = [
            v for v, name in relative.items() if name == prefix or name.startswith(prefix + "/")
        ]
        if not hits:
            scopes = sorted({name.split("/")[0] for name in relative.values()})
            raise UserError(
                f"--freeze {prefix!r} matches no encoder variable; the encoder's scopes are "
                f"{', '.join(scopes)}"
            )
        frozen += [v for v in hits if v not in frozen]
    return frozen


def initialize_new_variables(sess):
    """Initialise only what the SavedModel did not bring: the loaded VGG weights stay."""
    names = set(n.decode() for n in sess.run(tf.report_uninitialized_variables()))
    new = [v for v in tf.global_variables() if v.op.name in names]
    sess.run(tf.variables_initializer(new))
