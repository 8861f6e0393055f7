import json
from pathlib import Path

import pytest
from PIL import Image

from vlmpipe.core.config import DatasetConfig
from vlmpipe.core.dataset import DatasetError, load_image, load_items, resolve_image_path
from vlmpipe.core.images import ImageError


def make_folder(tmp_path: Path, names: list[str]) -> Path:
    d = tmp_path / "shots"
    d.mkdir()
    for n in names:
        Image.new("RGB", (10, 10), "white").save(d / n, format="PNG")
    return d


def test_folder_without_manifest_lists_images_in_natural_order(tmp_path: Path) -> None:
    d = make_folder(tmp_path, ["test_10.jpg", "test_2.png", "test_1.jpg"])
    (d / "notes.txt").write_text("not an image")
    items = load_items(DatasetConfig(path=d))
    assert [i.id for i in items] == ["test_1", "test_2", "test_10"]
    assert items[0].image == "test_1.jpg" and items[0].reference is None


def test_jsonl_manifest_with_references_and_facts(tmp_path: Path) -> None:
    d = make_folder(tmp_path, ["a.png"])
    m = d / "manifest.jsonl"
    rows = [
        {"id": "a", "image": "a.png", "reference": "Здравствуйте!", "facts": ["20 588 ₽", "23.10"]},
        {"id": "b", "image": "https://example.invalid/b.png", "user_message": "помогите"},
    ]
    m.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    items = load_items(DatasetConfig(path=d, manifest=m))
    assert items[0].facts == ["20 588 ₽", "23.10"] and items[0].reference == "Здравствуйте!"
    assert items[1].is_url and items[1].user_message == "помогите" and not items[0].is_url


def test_csv_manifest_splits_facts_on_semicolons(tmp_path: Path) -> None:
    d = make_folder(tmp_path, ["a.png"])
    m = d / "m.csv"
    m.write_text("id,image,reference,facts\na,a.png,текст,02632305-0222; 20:32\n", encoding="utf-8")
    (item,) = load_items(DatasetConfig(path=d, manifest=m))
    assert item.facts == ["02632305-0222", "20:32"]


def test_manifest_problems_fail_their_row_naming_the_file_row_and_field(tmp_path: Path) -> None:
    d = make_folder(tmp_path, ["a.png"])
    m = d / "m.jsonl"
    m.write_text('{"id": "a", "image": "a.png"}\n{"id": "b"}\n{"image": "a.png"}\n', encoding="utf-8")
    good, bad, again = load_items(DatasetConfig(path=d, manifest=m))
    assert good.id == "a" and good.error is None
    assert bad.id == "b" and bad.error == "m.jsonl: row 2: field image: Field required"
    # a row without an id is named after its image: here that name is taken by row 1
    assert again.id == "a@row-3" and again.error == ("m.jsonl: row 3: duplicate id 'a' (first used in row 1); "
                                                    "this row is skipped")
    m.write_text('{"id": "a", "image": "a.png"}\n{oops\n', encoding="utf-8")
    good, bad = load_items(DatasetConfig(path=d, manifest=m))
    assert good.error is None and bad.id == "row-2" and bad.error.startswith("m.jsonl: row 2: not valid JSON")


def test_empty_dataset_cannot_start(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    with pytest.raises(DatasetError, match="no items"):
        load_items(DatasetConfig(path=d))


def test_paths_outside_the_dataset_folder_are_refused(tmp_path: Path) -> None:
    d = make_folder(tmp_path, ["a.png"])
    with pytest.raises(ImageError, match="outside the dataset folder"):
        resolve_image_path(d, "../../etc/passwd")
    with pytest.raises(ImageError, match="outside the dataset folder"):
        resolve_image_path(d, "/etc/passwd")
    assert resolve_image_path(d, "a.png") == (d / "a.png").resolve()


def test_load_image_reports_missing_file(tmp_path: Path) -> None:
    from vlmpipe.core.dataset import Item

    d = make_folder(tmp_path, ["a.png"])
    assert load_image(d, Item("a", "a.png")).width == 10
    with pytest.raises(ImageError, match=r"image file not found: b\.png"):
        load_image(d, Item("b", "b.png"))


def test_the_studys_two_xls_files_load_as_one_vqa_dataset_with_device_tags(peer_vqa_dir: Path) -> None:
    from vlmpipe.core.config import DatasetConfig

    cfg = DatasetConfig.model_validate({
        "path": peer_vqa_dir / "images",
        "manifest": [{"file": peer_vqa_dir / "QA_pc.xls", "images": "pc", "tags": {"device": "pc"}},
                     {"file": peer_vqa_dir / "QA_phone.xls", "images": "phone", "tags": {"device": "phone"}}],
        "columns": {"image": "File_name", "question": "Question", "reference": "Answer"}})
    items = load_items(cfg)
    assert len(items) == 158 and all(it.error is None for it in items)
    first, second = items[0], items[1]  # QA_pc.xls rows 2 and 3: two questions about 233158.png
    assert (first.id, first.image, first.tags) == ("233158.png#1", "pc/233158.png", {"device": "pc"})
    assert first.question == "Куда нажать, чтобы оформить новую карту?"
    assert first.reference == "Вам необходимо нажать на кнопку с символом \"плюс\"."
    assert second.id == "233158.png#2" and second.question == "Как пополнить рублевый счет?"
    assert sum(it.tags == {"device": "phone"} for it in items) == 48
    assert all((peer_vqa_dir / "images" / it.image).is_file() for it in items)


def test_csv_and_xlsx_manifests_with_columns_tags_and_unanswerable_questions(tmp_path: Path) -> None:
    from openpyxl import Workbook

    from vlmpipe.core.config import DatasetConfig

    d = make_folder(tmp_path, ["a.png", "b.png"])
    header = ["Файл", "Вопрос", "Ответ", "answerable", "tag:os", "screen"]
    rows = [["a.png", "Где кнопка?", "Внизу.", "", "ios", "оплата"],
            ["a.png", "Сколько стоит доставка?", "На скриншоте не указано.", "false", "ios", "оплата"],
            ["b.png", "Что за ошибка?", "Ошибка 05.", "да", "android", "вход"]]
    (d / "m.csv").write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    wb = Workbook()
    for r in [header, *rows]:
        wb.active.append(r)
    wb.save(d / "m.xlsx")
    for name in ("m.csv", "m.xlsx"):
        cfg = DatasetConfig(path=d, manifest=d / name, columns={"image": "Файл", "question": "Вопрос",
                                                                  "reference": "Ответ"})
        a1, a2, b1 = load_items(cfg)
        assert (a1.id, a2.id, b1.id) == ("a.png#1", "a.png#2", "b.png#1"), name
        assert (a1.answerable, a2.answerable, b1.answerable) == (True, False, True), name
        assert a1.tags == {"os": "ios"} and b1.tags == {"os": "android"}, name
        assert a1.fields == {"screen": "оплата"} and a2.reference == "На скриншоте не указано.", name


def test_a_mistyped_column_mapping_stops_before_the_run_naming_the_column(tmp_path: Path) -> None:
    """A `dataset.columns` entry naming a column the manifest lacks would fail every row, one warning each; it is
    one error, naming the file, the field, the column, a close match and the columns there are."""
    from openpyxl import Workbook

    d = make_folder(tmp_path, ["a.png"])
    (d / "m.csv").write_text("File_name,Question,Answer\na.png,Где кнопка?,Внизу.\n", encoding="utf-8")
    wb = Workbook()
    for r in [["File_name", "Question", "Answer"], ["a.png", "Где кнопка?", "Внизу."]]:
        wb.active.append(r)
    wb.save(d / "m.xlsx")
    (d / "m.jsonl").write_text('{"File_name": "a.png", "Question": "Где кнопка?"}\n', encoding="utf-8")
    for name in ("m.csv", "m.xlsx", "m.jsonl"):
        columns = {"image": "File_nam", "question": "Question"}
        with pytest.raises(DatasetError) as err:
            load_items(DatasetConfig(path=d, manifest=d / name, columns=columns))
        assert str(err.value).startswith(f"{d / name}: dataset.columns.image names the column 'File_nam', which "
                                         "this manifest does not have; did you mean 'File_name'? (columns: "
                                         "'File_name', 'Question'"), name
        # no image column at all, and none mapped
        with pytest.raises(DatasetError, match=r"no column 'image' with the screenshot's file name \(its columns: "
                                               r"'File_name', 'Question'.*map it: dataset.columns: \{image: "):
            load_items(DatasetConfig(path=d, manifest=d / name, columns={"question": "Question"}))
        (item,) = load_items(DatasetConfig(path=d, manifest=d / name, columns={"image": "File_name",
                                                                               "question": "Question"}))
        assert item.error is None and (item.image, item.question) == ("a.png", "Где кнопка?"), name


def test_a_mapping_may_be_met_by_the_canonical_name_in_another_manifest(tmp_path: Path) -> None:
    """`dataset.columns` applies to every manifest source: a file that already uses the field's own name is fine,
    one source may lack an optional column another has, and a mapped column empty in every row is there."""
    d = make_folder(tmp_path, ["a.png", "b.png"])
    (d / "study.csv").write_text("File_name,Question,Answer\na.png,Где кнопка?,\n", encoding="utf-8")
    (d / "ours.jsonl").write_text('{"image": "b.png", "question": "Что за ошибка?"}\n', encoding="utf-8")
    cfg = DatasetConfig(path=d, manifest=[{"file": d / "study.csv"}, {"file": d / "ours.jsonl"}],
                        columns={"image": "File_name", "question": "Question", "reference": "Answer"})
    a, b = load_items(cfg)
    assert (a.id, a.error) == ("a.png#1", None) and not a.reference
    assert (b.id, b.question, b.error) == ("b.png#1", "Что за ошибка?", None)
    # a mapped column that no manifest has is a mistake, named with every file
    cfg = DatasetConfig(path=d, manifest=[{"file": d / "study.csv"}, {"file": d / "ours.jsonl"}],
                        columns={"image": "File_name", "reference": "Answers"})
    with pytest.raises(DatasetError, match=r"study.csv, .*ours.jsonl: dataset.columns.reference names the column "
                                           r"'Answers', which none of these manifests has; did you mean"):
        load_items(cfg)
