import Server

#if canImport(Glibc)
import Glibc
#endif

// The command line is parsed by `CLI` (Sources/Server/CLI.swift).
exit(CLI.main(Array(CommandLine.arguments.dropFirst())))
