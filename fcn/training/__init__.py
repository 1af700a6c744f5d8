"""Training: the job (train: data -> graph -> epochs -> run folder), checkpoints that survive
interruption, several devices and workers (distribute), the losses and class weights, and
TensorBoard summaries."""
