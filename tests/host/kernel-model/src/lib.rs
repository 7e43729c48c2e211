// SPDX-License-Identifier: GPL-2.0
//! A model of the kernel crate's surface that `src/pages/pfns.rs` uses, so the host crate builds that
//! file unchanged: `Vec<T, A>` with the kernel's fallible API (`reserve`, `from_elem`,
//! `insert_within_capacity`, ...), the error type and the allocation flags.
//!
//! Two hooks for tests: [`alloc::fail_after`] makes the n-th next allocation fail (as fault
//! injection does in the module), and [`alloc::live_bytes`] counts the bytes of every model
//! vector's buffer still allocated, so a test can see a failed operation give back what it took.

pub mod alloc {
    use core::{
        cell::Cell,
        marker::PhantomData,
        ops::{
            Deref,
            DerefMut, //
        },
    };

    thread_local! {
        static FAIL_AFTER: Cell<Option<usize>> = const { Cell::new(None) };
        static LIVE: Cell<usize> = const { Cell::new(0) };
        static ALLOCS: Cell<usize> = const { Cell::new(0) };
    }

    /// The `n`-th allocation from now fails (0: the next one), every one after it too until the
    /// next call; `None`: none fails.
    pub fn fail_after(n: Option<usize>) {
        FAIL_AFTER.with(|f| f.set(n));
    }

    /// Bytes of model vector buffers allocated and not freed, on this thread.
    pub fn live_bytes() -> usize {
        LIVE.with(|l| l.get())
    }

    /// Allocations made on this thread (successful or not).
    pub fn allocations() -> usize {
        ALLOCS.with(|a| a.get())
    }

    fn may_allocate() -> Result<(), AllocError> {
        ALLOCS.with(|a| a.set(a.get() + 1));
        FAIL_AFTER.with(|f| match f.get() {
            Some(0) => Err(AllocError),
            Some(n) => {
                f.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AllocError;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Flags(pub u32);

    impl core::ops::BitOr for Flags {
        type Output = Self;
        fn bitor(self, rhs: Self) -> Self {
            Self(self.0 | rhs.0)
        }
    }

    pub mod flags {
        use super::Flags;
        pub const GFP_KERNEL: Flags = Flags(1);
        pub const GFP_KERNEL_ACCOUNT: Flags = Flags(3);
        #[allow(non_upper_case_globals)]
        pub const __GFP_NOWARN: Flags = Flags(4);
    }

    pub trait Allocator {}

    pub mod allocator {
        pub struct Kmalloc;
        pub struct KVmalloc;
        impl super::Allocator for Kmalloc {}
        impl super::Allocator for KVmalloc {}
    }

    #[derive(Debug)]
    pub enum InsertError<T> {
        IndexOutOfBounds(T),
        OutOfCapacity(T),
    }

    /// The kernel's `Vec`: a buffer only grows through calls that can fail.
    pub struct Vec<T, A: Allocator> {
        v: std::vec::Vec<T>,
        _a: PhantomData<A>,
    }

    pub type KVVec<T> = Vec<T, allocator::KVmalloc>;
    pub type KVec<T> = Vec<T, allocator::Kmalloc>;

    impl<T, A: Allocator> Vec<T, A> {
        pub const fn new() -> Self {
            Self {
                v: std::vec::Vec::new(),
                _a: PhantomData,
            }
        }

        fn bytes(cap: usize) -> usize {
            cap * core::mem::size_of::<T>()
        }

        /// Grows to exactly `cap`, counting the bytes.
        fn grow_to(&mut self, cap: usize) -> Result<(), AllocError> {
            may_allocate()?;
            let old = self.v.capacity();
            self.v.reserve_exact(cap - self.v.len());
            LIVE.with(|l| l.set(l.get() + Self::bytes(self.v.capacity()) - Self::bytes(old)));
            Ok(())
        }

        pub fn capacity(&self) -> usize {
            self.v.capacity()
        }

        pub fn reserve(&mut self, additional: usize, _flags: Flags) -> Result<(), AllocError> {
            let (len, cap) = (self.v.len(), self.v.capacity());
            if cap - len >= additional {
                return Ok(());
            }
            let new_cap = core::cmp::max(cap * 2, len.checked_add(additional).ok_or(AllocError)?);
            self.grow_to(new_cap)
        }

        pub fn push(&mut self, v: T, flags: Flags) -> Result<(), AllocError> {
            self.reserve(1, flags)?;
            self.v.push(v);
            Ok(())
        }

        pub fn insert_within_capacity(
            &mut self,
            index: usize,
            element: T,
        ) -> Result<(), InsertError<T>> {
            if index > self.v.len() {
                return Err(InsertError::IndexOutOfBounds(element));
            }
            if self.v.len() >= self.v.capacity() {
                return Err(InsertError::OutOfCapacity(element));
            }
            self.v.insert(index, element);
            Ok(())
        }

        pub fn truncate(&mut self, len: usize) {
            self.v.truncate(len);
        }

        pub fn pop(&mut self) -> Option<T> {
            self.v.pop()
        }

        pub fn with_capacity(capacity: usize, flags: Flags) -> Result<Self, AllocError> {
            let mut v = Self::new();
            v.reserve(capacity, flags)?;
            Ok(v)
        }
    }

    impl<T: Clone, A: Allocator> Vec<T, A> {
        pub fn from_elem(value: T, n: usize, flags: Flags) -> Result<Self, AllocError> {
            let mut v = Self::with_capacity(n, flags)?;
            v.v.resize(n, value);
            Ok(v)
        }
    }

    impl<T, A: Allocator> Default for Vec<T, A> {
        fn default() -> Self {
            Self::new()
        }
    }

    impl<T, A: Allocator> Drop for Vec<T, A> {
        fn drop(&mut self) {
            let b = Self::bytes(self.v.capacity());
            LIVE.with(|l| l.set(l.get() - b));
        }
    }

    impl<T, A: Allocator> Deref for Vec<T, A> {
        type Target = [T];
        fn deref(&self) -> &[T] {
            &self.v
        }
    }

    impl<T, A: Allocator> DerefMut for Vec<T, A> {
        fn deref_mut(&mut self) -> &mut [T] {
            &mut self.v
        }
    }
}

pub mod error {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Error(pub i32);

    impl From<crate::alloc::AllocError> for Error {
        fn from(_: crate::alloc::AllocError) -> Self {
            code::ENOMEM
        }
    }

    pub type Result<T = (), E = Error> = core::result::Result<T, E>;

    pub mod code {
        use super::Error;
        pub const EINVAL: Error = Error(-22);
        pub const ENOMEM: Error = Error(-12);
        pub const EFAULT: Error = Error(-14);
    }
}

pub mod prelude {
    pub use crate::alloc::{
        flags::*,
        KVVec,
        KVec,
        Vec, //
    };
    pub use crate::error::{
        code::*,
        Error,
        Result, //
    };
}
