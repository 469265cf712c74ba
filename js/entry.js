// What explorer/static/atlas.js uses of regl-scatterplot, exposed as window.AtlasScatter.
export { default as createScatterplot, createRenderer } from "regl-scatterplot";
