// SPDX-License-Identifier: GPL-2.0
//! Files: anonymous-inode files with our file operations, poll and wait queues, misc devices and
//! the capability checks an open or an ioctl makes.
