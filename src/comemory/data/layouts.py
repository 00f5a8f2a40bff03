"""The dataset layouts ``--dataset`` names, and what each expects under ``--root``.

Apart from the readers (comemory.data.datasets) so that the command line can list and
describe them without loading OpenCV. An explicit ``labels`` path replaces a layout's own
test labels: a flat ``.npy`` for ``frames``, a ``.m`` for ``ucsd``, a CSV for ``videos``.
"""
from __future__ import annotations

LAYOUTS = {
    "frames": "MNAD / future-frame-prediction: <root>/{training,testing}/frames/<video>/*.jpg,\n"
              "<root>/frame_labels_<name>.npy (flat, or (1, N) as MNAD ships it, test\n"
              "videos in order), optional <root>/testing/masks/<video>/*.png",
    "ucsd": "UCSD Ped1/Ped2: <root>/Train/TrainNNN/*.tif, <root>/Test/TestNNN/*.tif,\n"
            "UCSDpedN.m (gt_frame ranges) in <root>/Test or <root>,\n"
            "optional masks <root>/Test/TestNNN_gt/*.bmp (Ped1 has them for 10 clips)",
    "avenue": "CUHK Avenue: <root>/training_videos/*.avi, <root>/testing_videos/*.avi,\n"
              "<root>/testing_label_mask/N_label.mat (volLabel); or MNAD's frame layout",
    "shanghaitech": "<root>/training/videos/*.avi, <root>/testing/frames/<video>/*.jpg,\n"
                    "<root>/testing/test_frame_mask/<video>.npy, test_pixel_mask/<video>.npy",
    "videos": "your own: <root>/training/*.mp4 (any format OpenCV decodes),\n"
              "<root>/testing/*.mp4, optional <root>/labels.csv with rows\n"
              "video,start_frame,end_frame (frames from 0, end inclusive), optional\n"
              "pixel masks <root>/testing_masks/<video>/*.png (one per frame; any\n"
              "video may lack them)",
}
ALIASES = {"ped1": "ucsd", "ped2": "ucsd", "mnad": "frames"}


def dataset_names() -> list[str]:
    """Every name ``--dataset`` takes: the layouts and their aliases."""
    return sorted([*LAYOUTS, *ALIASES])


def layouts_help() -> str:
    """The layouts as an indented table, for ``--help`` texts."""
    lines = []
    for name, text in LAYOUTS.items():
        first, *rest = text.split("\n")
        lines.append(f"  {name:<13} {first}")
        lines += [" " * 16 + line for line in rest]
    return "\n".join(lines)
