"""The dataset readers on small fixtures written in each dataset's true format:
.tif frames and a UCSDpedN.m, .avi videos and volLabel .mat files, .npy masks, a labels CSV."""
import cv2
import numpy as np
import pytest
from scipy.io import savemat

from comemory.cli import main
from comemory.data.cache import load_split
from comemory.data.datasets import read_dataset
from comemory.errors import DataError
from tests.conftest import small_config

HEIGHT, WIDTH = 24, 32


def frame(index: int) -> np.ndarray:
    """A grey frame with a bright square that moves with ``index``."""
    image = np.full((HEIGHT, WIDTH), 40, np.uint8)
    image[8:14, 2 + index:8 + index] = 220
    return image


def write_frames(folder, count, ext=".tif", first=1):
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i + first:03d}{ext}"), frame(i))


def write_avi(path, count):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for i in range(count):
        writer.write(cv2.cvtColor(frame(i), cv2.COLOR_GRAY2BGR))
    writer.release()


def masks_for(labels):
    masks = np.zeros((len(labels), HEIGHT, WIDTH), np.uint8)
    masks[np.asarray(labels, bool), 8:14, 2:8] = 1
    return masks


def prepared(root, dataset, split="testing", labels=None):
    return load_split(root, split, small_config(), root / "cache", labels, dataset)


# UCSD Ped1/Ped2 -------------------------------------------------------------------------------

def write_ucsd(root, gt_line_2="[1:3, 6:8]"):
    write_frames(root / "Train" / "Train001", 6)
    write_frames(root / "Train" / "Train002", 5)
    write_frames(root / "Test" / "Test001", 8)
    write_frames(root / "Test" / "Test002", 8)
    labels_1 = [0, 0, 0, 0, 1, 1, 1, 1]
    (root / "Test" / "Test001_gt").mkdir()
    for i, mask in enumerate(masks_for(labels_1)):
        cv2.imwrite(str(root / "Test" / "Test001_gt" / f"{i + 1:03d}.bmp"), mask * 255)
    (root / "Test" / "UCSDped1.m").write_text(
        "TestVideoFile = {};\n"
        "TestVideoFile{end+1}.gt_frame = [5:8];\n"
        f"TestVideoFile{{end+1}}.gt_frame = {gt_line_2};\n")
    return labels_1


def test_ucsd_reads_tif_frames_m_ranges_and_bmp_masks(tmp_path):
    labels_1 = write_ucsd(tmp_path)
    (tmp_path / "Train" / "Train001" / "._001.tif").write_bytes(b"macOS resource fork")
    training = read_dataset("ped1", tmp_path, "training")
    assert [v.name for v in training] == ["Train001", "Train002"]
    assert training[0].source.frame_count() == 6  # the hidden ._001.tif is not a frame
    videos = prepared(tmp_path, "ucsd")
    assert [v.name for v in videos] == ["Test001", "Test002"]  # the _gt folder is not a video
    assert videos[0].labels.tolist() == labels_1
    assert videos[1].labels.tolist() == [1, 1, 1, 0, 0, 1, 1, 1]  # two ranges, 1-based
    assert videos[0].masks.load().any(axis=(1, 2)).astype(int).tolist() == labels_1
    assert videos[1].masks is None and videos[0].resolution == (HEIGHT, WIDTH)


def test_ucsd_errors_name_the_file(tmp_path):
    write_ucsd(tmp_path, gt_line_2="[4:9]")
    with pytest.raises(DataError, match=r"UCSDped1.m: span 3-8 of video 'Test002' ends past"):
        prepared(tmp_path, "ucsd")
    (tmp_path / "Test" / "UCSDped1.m").write_text("TestVideoFile{end+1}.gt_frame = [5:8];\n")
    with pytest.raises(DataError, match=r"UCSDped1.m: 1 gt_frame entries for 2 test videos"):
        read_dataset("ucsd", tmp_path, "testing")
    (tmp_path / "Test" / "UCSDped1.m").write_text("nothing here\n")
    with pytest.raises(DataError, match="no gt_frame entries"):
        read_dataset("ucsd", tmp_path, "testing")


def test_ucsd_mask_count_must_match_the_frames(tmp_path):
    write_ucsd(tmp_path)
    (tmp_path / "Test" / "Test001_gt" / "008.bmp").unlink()
    with pytest.raises(DataError, match=r"Test001_gt: 7 masks for video 'Test001', which has 8"):
        prepared(tmp_path, "ucsd")


# CUHK Avenue ------------------------------------------------------------------------------------

def write_avenue(root, label_frames=None):
    write_avi(root / "training_videos" / "01.avi", 6)
    write_avi(root / "testing_videos" / "01.avi", 7)
    write_avi(root / "testing_videos" / "02.avi", 5)
    labels = {1: [0, 0, 1, 1, 1, 0, 0], 2: [1, 1, 0, 0, 0]}
    (root / "testing_label_mask").mkdir()
    for number, video_labels in labels.items():
        if label_frames is not None and number == 2:
            video_labels = video_labels[:label_frames]
        cells = np.empty((1, len(video_labels)), dtype=object)
        for i, mask in enumerate(masks_for(video_labels)):
            cells[0, i] = mask
        savemat(str(root / "testing_label_mask" / f"{number}_label.mat"), {"volLabel": cells})
    return labels


def test_avenue_reads_avi_and_vollabel_mat(tmp_path):
    labels = write_avenue(tmp_path)
    training = prepared(tmp_path, "avenue", "training")
    assert [v.name for v in training] == ["01"] and len(training[0].frames) == 6
    videos = prepared(tmp_path, "avenue")
    assert [len(v.frames) for v in videos] == [7, 5]
    assert videos[0].labels.tolist() == labels[1] and videos[1].labels.tolist() == labels[2]
    masks = videos[0].masks.load()
    assert masks.shape == (7, HEIGHT, WIDTH) and masks.dtype == bool
    assert videos[0].resolution == (HEIGHT, WIDTH)


def test_avenue_label_length_and_missing_mat_are_named(tmp_path):
    write_avenue(tmp_path, label_frames=4)
    with pytest.raises(DataError, match=r"2_label.mat: 4 labels for video '02', which has 5"):
        prepared(tmp_path, "avenue")
    (tmp_path / "testing_label_mask" / "2_label.mat").unlink()
    with pytest.raises(DataError, match=r"no label file for test video '02' \(expected 2_label"):
        read_dataset("avenue", tmp_path, "testing")


def test_avenue_in_mnad_frame_layout_falls_back_to_the_frames_reader(tmp_path):
    write_frames(tmp_path / "training" / "frames" / "01", 4, ".jpg", first=0)
    write_frames(tmp_path / "testing" / "frames" / "01", 4, ".jpg", first=0)
    np.save(tmp_path / "frame_labels_avenue.npy", np.array([0, 0, 1, 1]))
    videos = prepared(tmp_path, "avenue")
    assert videos[0].labels.tolist() == [0, 0, 1, 1]


def test_a_video_that_cannot_be_decoded_is_named(tmp_path):
    write_avenue(tmp_path)
    (tmp_path / "training_videos" / "02.avi").write_bytes(b"RIFF but not really a video")
    with pytest.raises(DataError, match=r"02.avi: (OpenCV cannot open|decoded 0 frame)"):
        prepared(tmp_path, "avenue", "training")


# ShanghaiTech -----------------------------------------------------------------------------------

def test_shanghaitech_reads_training_videos_and_test_frames_with_npy_masks(tmp_path):
    write_avi(tmp_path / "training" / "videos" / "01_001.avi", 6)
    write_frames(tmp_path / "testing" / "frames" / "01_0014", 6, ".jpg", first=0)
    labels = [0, 1, 1, 1, 0, 0]
    (tmp_path / "testing" / "test_frame_mask").mkdir(parents=True)
    (tmp_path / "testing" / "test_pixel_mask").mkdir()
    np.save(tmp_path / "testing" / "test_frame_mask" / "01_0014.npy", np.array(labels))
    np.save(tmp_path / "testing" / "test_pixel_mask" / "01_0014.npy", masks_for(labels))
    assert len(prepared(tmp_path, "shanghaitech", "training")[0].frames) == 6
    (video,) = prepared(tmp_path, "shanghaitech")
    assert video.labels.tolist() == labels
    assert video.masks.load().any(axis=(1, 2)).astype(int).tolist() == labels
    np.save(tmp_path / "testing" / "test_pixel_mask" / "01_0014.npy", masks_for(labels)[:5])
    with pytest.raises(DataError, match=r"01_0014.npy: 5 masks for video '01_0014'"):
        prepared(tmp_path, "shanghaitech")
    (tmp_path / "testing" / "test_frame_mask" / "01_0014.npy").unlink()
    with pytest.raises(DataError, match=r"01_0014.npy: frame labels of test video"):
        read_dataset("shanghaitech", tmp_path, "testing")


# Your own videos --------------------------------------------------------------------------------

def write_own(root):
    write_avi(root / "training" / "hall.avi", 6)
    write_avi(root / "testing" / "door.avi", 8)
    write_avi(root / "testing" / "yard.avi", 5)
    (root / "labels.csv").write_text("video,start_frame,end_frame\ndoor.avi,2,3\ndoor,6,7\n")


def test_own_videos_with_a_labels_csv(tmp_path):
    write_own(tmp_path)
    assert [v.name for v in read_dataset("videos", tmp_path, "training")] == ["hall"]
    door, yard = prepared(tmp_path, "videos")
    assert door.labels.tolist() == [0, 0, 1, 1, 0, 0, 1, 1]  # from 0, end inclusive
    assert yard.labels.tolist() == [0] * 5  # not in the CSV: normal throughout
    (tmp_path / "labels.csv").unlink()
    assert all(v.labels is None for v in read_dataset("videos", tmp_path, "testing"))


def test_own_labels_csv_errors_name_the_file_and_line(tmp_path):
    write_own(tmp_path)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("video,start_frame,end_frame\ngate,0,3\n")
    with pytest.raises(DataError, match=r"labels.csv: no test video named 'gate'"):
        read_dataset("videos", tmp_path, "testing")
    csv_path.write_text("video,start_frame,end_frame\ndoor,5,x\n")
    with pytest.raises(DataError, match=r"labels.csv, line 2: start_frame and end_frame"):
        read_dataset("videos", tmp_path, "testing")
    csv_path.write_text("clip,from,to\n")
    header = "the first line must be the header video,start_frame,end_frame"
    with pytest.raises(DataError, match=header):
        read_dataset("videos", tmp_path, "testing")
    csv_path.write_text("video,start_frame,end_frame\ndoor,6,8\n")
    with pytest.raises(DataError, match=r"span 6-8 of video 'door' ends past its last frame \(7"):
        prepared(tmp_path, "videos")
    with pytest.raises(DataError, match="training: folder not found"):
        read_dataset("videos", tmp_path / "testing", "training")


def write_masks(folder, labels):
    folder.mkdir(parents=True)
    for i, mask in enumerate(masks_for(labels)):
        cv2.imwrite(str(folder / f"{i:03d}.png"), mask * 255)


def test_own_videos_with_pixel_masks_for_some_videos(tmp_path):
    write_own(tmp_path)
    door_labels = [0, 0, 1, 1, 0, 0, 1, 1]
    write_masks(tmp_path / "testing_masks" / "door", door_labels)  # yard has none
    door, yard = prepared(tmp_path, "videos")
    assert door.masks.load().any(axis=(1, 2)).astype(int).tolist() == door_labels
    assert yard.masks is None
    assert all(v.masks is None for v in read_dataset("videos", tmp_path, "training"))


def test_own_videos_mask_errors_name_the_folder(tmp_path):
    write_own(tmp_path)
    write_masks(tmp_path / "testing_masks" / "door", [0] * 7)  # door has 8 frames
    with pytest.raises(DataError, match=r"testing_masks/door: 7 masks for video 'door', which "
                                        r"has 8"):
        prepared(tmp_path, "videos")
    write_masks(tmp_path / "testing_masks" / "gate", [0] * 8)
    with pytest.raises(DataError, match=r"testing_masks/gate: mask folder of no test video"):
        read_dataset("videos", tmp_path, "testing")


def test_ucsd_ped1_as_shipped_masks_for_a_subset_and_an_all_anomalous_clip(tmp_path):
    """UCSDped1 ships masks (Test/TestNNN_gt/*.bmp) for 10 of its 36 test clips, and one
    clip (Test014) is anomalous throughout."""
    write_frames(tmp_path / "Train" / "Train001", 6)
    for clip in ("Test001", "Test002", "Test003"):
        write_frames(tmp_path / "Test" / clip, 6)
    gt = tmp_path / "Test" / "Test002_gt"
    gt.mkdir()
    for i, mask in enumerate(masks_for([1] * 6)):
        cv2.imwrite(str(gt / f"{i + 1:03d}.bmp"), mask * 255)
    (tmp_path / "Test" / "UCSDped1.m").write_text(
        "TestVideoFile = {};\n"
        "TestVideoFile{end+1}.gt_frame = [2:4];\n"
        "TestVideoFile{end+1}.gt_frame = [1:6];\n"
        "TestVideoFile{end+1}.gt_frame = [5:6];\n")
    videos = prepared(tmp_path, "ped1")
    assert [v.masks is not None for v in videos] == [False, True, False]
    assert videos[1].labels.tolist() == [1] * 6
    assert videos[1].masks.load().all(axis=0)[8:14, 2:8].any()  # the object is masked
    assert [v.labels.tolist() for v in videos[::2]] == [[0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1]]


def test_prepare_command_prints_a_summary(tmp_path, capsys):
    write_ucsd(tmp_path / "UCSDped1")
    assert main(["prepare", "--dataset", "ped1", "--root", str(tmp_path / "UCSDped1"),
                 "--preset", "tiny", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "training: 2 videos, 11 frames, resolution 32x24" in out
    assert "testing: 2 videos, 16 frames, 10 anomalous, pixel masks for 1 videos" in out
    assert any((tmp_path / "cache").rglob("flow-64-*.npy"))
    assert main(["prepare", "--dataset", "avenue", "--root", str(tmp_path / "missing")]) == 2
