// Copy buttons (no inline script under the strict CSP): a button with data-copy="ID"
// copies the value of the read-only input ID, or the text of element ID (a <code>).
// Without JavaScript the buttons stay hidden and the value can be selected by hand.
// Success is announced through a status region beside the button (screen readers hear
// "Copied to the clipboard"), not only by the button's changed label, and so is a refusal.
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) { return; }
  var status = document.createElement("span");
  status.setAttribute("role", "status");
  status.className = "sr-only";
  button.insertAdjacentElement("afterend", status);
  button.hidden = false;
  button.addEventListener("click", function () {
    var text;
    if ("value" in source && typeof source.select === "function") {
      source.select();
      text = source.value;
    } else {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      text = source.textContent;
    }
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = "Copied";
      status.textContent = "Copied to the clipboard";
    }, function () {
      // The browser refused (the page was not in front, or clipboard access is off):
      // the text is selected, so say how to copy it instead of failing silently.
      status.textContent = "Could not copy: the text is selected, copy it with Ctrl+C";
    });
  });
});
