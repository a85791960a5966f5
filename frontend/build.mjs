// Bundles the front end's ES modules and copies OpenSeadragon's button images, from npm only.
// The annotation overlay's render worker is its own entry point (it runs in a Worker).
import { build } from "esbuild";
import { cpSync, mkdirSync } from "node:fs";

const outdir = "dist/bmadcc";
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: [
    "src/viewer.js",
    "src/slides.js",
    "src/annotate.js",
    "src/gallery.js",
    "src/report_viewer.js",
    "src/annotate/overlay_worker.js",
  ],
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: true,
  target: ["es2020"],
  outbase: "src",
  outdir,
});
cpSync("node_modules/openseadragon/build/openseadragon/images", `${outdir}/osd-images`, {
  recursive: true,
});
cpSync("src/app.css", `${outdir}/app.css`);
console.log(`built ${outdir}`);
