// SystemD module
