#include <archive.h>
#include <archive_entry.h>

// The AE_IF* file types are cast macros, which Swift does not import.
static const unsigned int clibarchive_ifreg = AE_IFREG;
static const unsigned int clibarchive_ifdir = AE_IFDIR;
static const unsigned int clibarchive_iflnk = AE_IFLNK;
