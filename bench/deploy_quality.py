"""Does int8 keep the quality of a trained model? Float vs int8 vs QAT (and pruning, clustering).

Trains DeepLabv3+ (MobileNetV2 backbone) on the embedded segmentation data and MobileNetV2 on the
digits, briefly, then exports each to TFLite fp32, int8 and int8-io (calibrated on training
images, checked on held-out ones) and runs QAT, pruning and clustering through the tf_keras twin.
Prints the deploy report table: quality of the file against the float Keras model.

    PYTHONPATH=. python bench/deploy_quality.py --out quality_out
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import garden  # noqa: E402

keras = garden.import_keras()  # before anything else imports it: no TensorFlow start-up lines

from deploy import calibrate, export, report  # noqa: E402
from deploy.optimize import optimize_and_export  # noqa: E402
from garden.data import split  # noqa: E402


def train(model, examples, epochs, batch_size=16, learning_rate=3e-3):
    shape = tuple(model.input_shape[1:])
    x, y = calibrate.prepare(examples, shape)
    ignore = 255 if examples.task == "segmentation" else None
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore)
    steps = epochs * -(-len(x) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.02)
    model.compile(keras.optimizers.Adam(schedule), loss)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=2, shuffle=True)
    return model


def case(name, model, data, epochs, out, steps, techniques):
    import garden  # noqa: F401

    train_set, held_out = split(data, held_out=0.25, seed=0)
    path = Path(out) / f"{name}_trained.keras"
    if path.exists():
        model = garden.load_model(path)
    else:
        model = train(model, train_set, epochs)
        model.save(path)
    common = dict(calib=train_set, check_data=held_out, out=out, check_count=len(held_out), repeats=20)
    reports = [
        export(model, quant=q, name=f"{name}_{q}", calib_count=64, **common).report for q in ("fp32", "int8", "int8-io")
    ]
    for technique in techniques:
        result = optimize_and_export(model, technique=technique, steps=steps, train_count=96, **common)
        reports.append({**result.report, "model": f"{name} ({technique})"})
    return reports


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="quality_out")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=60, help="fine-tuning steps of QAT / pruning / clustering")
    parser.add_argument("--images", type=int, default=1000, help="embedded segmentation images")
    parser.add_argument("--only", choices=["deeplab", "mobilenet"])
    parser.add_argument("--techniques", default="qat,prune,cluster")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    import garden
    from garden.data.sources import load_source

    techniques = [t for t in args.techniques.split(",") if t]
    reports = []
    if args.only in (None, "deeplab"):
        from garden.data.embedded import embedded_segmentation

        model = garden.create_model(
            "deeplabv3plus",
            input_shape=(64, 64, 3),
            num_classes=11,
            backbone_kwargs={"alpha": 0.5},
            aspp_filters=64,
            decoder_filters=64,
        )
        data = embedded_segmentation(num_images=args.images, size=64, seed=0)
        reports += case("deeplabv3plus_mobilenet_v2", model, data, args.epochs, args.out, args.steps, techniques)
    if args.only in (None, "mobilenet"):
        model = garden.create_model("mobilenet_v2", input_shape=(32, 32, 3), num_classes=10, alpha=0.35)
        reports += case("mobilenet_v2", model, load_source("digits"), args.epochs, args.out, args.steps, techniques)
    table = report.to_markdown(reports)
    (Path(args.out) / "quality.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
