/*
 * file - reading small whole files (configuration, tables, secrets), and
 * creating directories.
 *
 * file_read() reads a regular file of bounded size into memory in one go,
 * so loaders parse from a string and their tests feed them strings.  It
 * allocates the text, which the caller frees; it never logs.  It returns
 * FILE_E* codes (file_strerror()); file_mkdirs() and file_create() return
 * -errno.
 */
#ifndef MXFWD_FILE_H
#define MXFWD_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/* The file band of error codes (docs/development.md, "Error codes"). */
#define FILE_EBASE (-7000)
#define FILE_EOPEN (FILE_EBASE - 1)   /* open(2) failed: errno says why */
#define FILE_EREAD (FILE_EBASE - 2)   /* fstat(2) or read(2) failed: errno says why */
#define FILE_ENOTREG (FILE_EBASE - 3) /* not a regular file */
#define FILE_ETOOBIG (FILE_EBASE - 4) /* larger than the caller's limit */

/*
 * Read path, at most max bytes.  0 and *text (NUL-terminated, also holding
 * any NUL bytes of the file), *len, and *st when st is not NULL; or a
 * FILE_E* code and *text NULL.
 */
int file_read(const char *path, size_t max, char **text, size_t *len, struct stat *st);

/* mkdir -p: create dir and its missing parents with mode (0700 for
 * mxfwd's state), each new one made durable in its parent (an fsync of
 * the parent), as the spool's files are.  0 or -errno. */
int file_mkdirs(const char *dir, mode_t mode);

/* Create path, which must not exist (O_EXCL: a file, or a symbolic link,
 * already there is never replaced: -EEXIST), with mode whatever the umask,
 * holding data[len], made durable (fsync of the file and its directory).
 * On failure nothing is left at path.  0 or -errno. */
int file_create(const char *path, const void *data, size_t len, mode_t mode);

/* A phrase for file_read()'s err: "cannot open: No such file or
 * directory", "not a regular file".  For FILE_EOPEN and FILE_EREAD it uses
 * errno, so call it before anything else can change errno. */
const char *file_strerror(int err);

#endif
