// What explorer/static/atlas.js uses, exposed as window.AtlasScatter: regl-scatterplot's plot and
// shared renderer, and KDBush (the spatial index format regl-scatterplot reads), so the page
// builds each panel's index from typed arrays instead of a million small arrays.
export { default as createScatterplot, createRenderer } from "regl-scatterplot";
export { default as KDBush } from "kdbush";
