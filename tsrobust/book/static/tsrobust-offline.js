// Offline support for the static book (loaded on every page, before the widget manager).
(function () {
  // 1. The widget manager loads its fonts from the folder vendored next to this script, not
  //    from a path relative to the page: set its asset path, and map its AMD module name there
  //    (a global `require` object defined before require.js loads is require.js's config).
  var here = document.currentScript && document.currentScript.src;
  if (here) {
    var assets = new URL("html-manager/", here).href;
    window.__jupyter_widgets_assets_path__ = assets;
    if (!window.require) {
      var folder = assets.slice(0, -1);
      // The widget manager and the widget modules it defines ("@jupyter-widgets/...") both
      // resolve their assets next to their module URL: map both names to this folder.
      window.require = {paths: {"@jupyter-widgets/html-manager/dist": folder,
                                "@jupyter-widgets": folder}};
    }
  }
  // 2. ipywidgets typesets labels with the MathJax 2 API (MathJax.Hub.Queue); the book uses
  //    MathJax 3. Route such calls to MathJax 3's typesetPromise.
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub) return;
    mj.Hub = {
      Queue: function (job) {
        var el = job && job[2];
        var ready = mj.startup && mj.startup.promise ? mj.startup.promise : Promise.resolve();
        ready.then(function () {
          if (mj.typesetPromise) return mj.typesetPromise(el ? [el] : undefined);
        });
      }
    };
  });
})();
