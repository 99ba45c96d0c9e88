"""Fetch the ImageNet weights of MobileNetV2 (torchvision's MobileNet_V2_Weights.DEFAULT), checked
against the hash in their file name; the baseline starts from them with model.weights: imagenet.

    python -m scripts.model fetch-imagenet --out resources/weights/mobilenet_v2-7ebf99e0.pth
"""
import argparse

from scripts.lib.files import setup_logging
from scripts.lib.models.network import WeightsError, fetch_imagenet_weights


def main(argv=None) -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch-imagenet", help="download MobileNet_V2_Weights.DEFAULT").add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        fetch_imagenet_weights(args.out)
    except WeightsError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
