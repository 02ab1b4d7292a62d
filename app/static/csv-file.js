// "Or choose a file" on the CSV import: the file is read in the browser and its text put
// into the text area, where the admin sees it before the dry run; the form still sends
// text (urlencoded), never an upload. Without JavaScript the picker stays hidden and the
// text is pasted. A file over the form's limit is refused here, pointing to the API.
document.querySelectorAll("[data-file-into]").forEach(function (box) {
  var input = box.querySelector("input[type=file]");
  var target = document.getElementById(box.getAttribute("data-file-into"));
  var status = box.querySelector("[role=status]");
  var limit = Number(box.getAttribute("data-max-bytes")) || 0;
  if (!input || !target || !status || !window.FileReader) { return; }
  box.hidden = false;
  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file) { return; }
    if (limit && file.size > limit) {
      status.textContent = file.name + " is larger than the console takes (" +
        Math.round(limit / 1024) + " KB): import it through the API (POST /v1/members/import).";
      input.value = "";
      return;
    }
    var reader = new FileReader();
    reader.onload = function () {
      target.value = String(reader.result).replace(/^\uFEFF/, "");
      var lines = target.value.split(/\r\n|\r|\n/).filter(function (l) { return l.trim(); }).length;
      status.textContent = "Read " + file.name + ": " + lines + (lines === 1 ? " line" : " lines") +
        ". Check it below, then press Check (dry run).";
      target.focus();
    };
    reader.onerror = function () {
      status.textContent = "Could not read " + file.name + ": choose it again, or paste its text.";
    };
    reader.readAsText(file);  // UTF-8, as the import expects
  });
});
