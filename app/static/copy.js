// Copy buttons (no inline script under the strict CSP): a button with data-copy="ID"
// copies the value of the read-only input ID. Without JavaScript the buttons stay hidden
// and the input can be selected and copied by hand.
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    source.select();
    navigator.clipboard.writeText(source.value).then(function () {
      button.textContent = "Copied";
    });
  });
});
