// Handlers module
