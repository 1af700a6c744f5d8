"""Using a trained model: the prediction path in the graph, the `Predictor` that every caller
predicts through, opening runs and exports, test-time augmentation, DenseCRF and overlays.

    prediction  the graph ops (resize, normalise, network, upsample, decide): in every training
                graph, so in every checkpoint and export
    predictor   `Predictor`, the contract every backend and wrapper keeps; `SessionPredictor`
    restore     open a run folder or an export as a SessionPredictor
    tta         the flipped copies the path averages (--tta)
    crf         DenseCRF refinement of probabilities
    overlays    painting masks in the dataset's palette, legends
    infer       the infer job (InferOptions, the image and video loops)
    media       infer's inputs and outputs: collecting paths, planning files, video I/O
    export      a run -> SavedModel, frozen graph, ONNX and export.json (ExportOptions)
    backends    open_backend: a run or an export as a Predictor on tf, onnxruntime or tflite
    ort         the ONNX Runtime Predictor (model.onnx, model_int8.onnx)
    quantize    int8 ONNX: static quantisation calibrated on training images
    deploy      what export adds for deployment: the int8 file, export.json's backends, input,
                classes, calibration set and quality
    quality     each file of an export scored on the validation split against float TF
    run_images  the run's calibration (training) and validation images

Nothing is imported here, so `fcn.inference.overlays` does not pull in TensorFlow; neither do
infer, media and export at import time (they import it where a model is opened).
"""
