// agno-storage web page: the little script it needs, no build step.
// A table picker submits its form on change; "/" focuses the search box.
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => {
      const form = select.form;
      // A new table: the cursor and filters of the old one do not apply.
      for (const input of form.querySelectorAll("input")) if (input.name !== "q") input.value = "";
      form.submit();
    });
  }
  document.addEventListener("keydown", (event) => {
    const box = document.querySelector("input[type=search]");
    if (event.key === "/" && box && document.activeElement !== box) {
      event.preventDefault();
      box.focus();
    }
  });
});
